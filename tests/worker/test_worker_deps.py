"""``tether worker --deps``: the nodes of a worker process get their dependencies
(``ctx.deps``) from a dict, or a function returning one, named like ``--app``; a bad reference
is refused before the worker starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.worker.procs import ROOT, pythonpath, wait_until
from tether import RunStatus, Runtime
from tether.cli.main import main
from tether.core.lifecycle import FINISHED
from tether.core.refs import load_ref

APP = textwrap.dedent(
    """
    from typing import TypedDict

    from tether import END, START, Graph, RunContext

    class Order(TypedDict, total=False):
        order: str
        reply: str

    class Shop:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

    def answer(state: Order, ctx: RunContext) -> dict:
        return {"reply": f"{ctx.deps['shop'].greeting} {state['order']}"}

    g = Graph(Order, name="deps_app")
    g.add_node("answer", answer).add_edge(START, "answer").add_edge("answer", END)
    workflow = g.compile()

    def make_deps() -> dict:
        return {"shop": Shop("order received:")}

    not_a_mapping = 42
    """
)


async def _submit(url: str, app: Path) -> str:
    wf = load_ref(f"{app}:workflow")
    async with Runtime(url, workflows=[wf], recover=False) as rt:
        return (await rt.submit(wf, {"order": "1234"})).run_id


async def _result(url: str, app: Path, run_id: str) -> tuple[RunStatus, dict[str, Any]]:
    wf = load_ref(f"{app}:workflow")
    async with Runtime(url, workflows=[wf], recover=False) as rt:
        rec = await rt.get_run(run_id)
        return rec.status, await rt.get_state(run_id)


def test_a_worker_hands_its_deps_to_the_nodes(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    run_id = asyncio.run(_submit(url, app))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli",
            "--json",
            "worker",
            "--app",
            f"{app}:workflow",
            "--deps",
            f"{app}:make_deps",
            "--store",
            url,
            "--poll-interval",
            "0.05",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        started = json.loads(worker.stdout.readline() or "{}")
        assert started.get("workflows") == ["deps_app"], worker.stderr

        def finished() -> tuple[RunStatus, dict[str, Any]] | None:
            status, state = asyncio.run(_result(url, app, run_id))
            return (status, state) if status in FINISHED else None

        status, state = wait_until("the run to finish", finished)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
    assert status is RunStatus.COMPLETED
    assert state["reply"] == "order received: 1234"


@pytest.mark.parametrize(
    ("attr", "why"),
    [("not_a_mapping", "must name a dict"), ("missing", "has no attribute")],
)
def test_bad_deps_are_refused(
    attr: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP, encoding="utf-8")
    argv = ["worker", "--app", f"{app}:workflow", "--deps", f"{app}:{attr}"]
    assert main([*argv, "--store", f"sqlite:///{tmp_path / 'runs.db'}"]) == 2
    assert why in capsys.readouterr().err
