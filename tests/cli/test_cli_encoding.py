"""The ``tether`` command on a terminal that is not UTF-8 (``PYTHONIOENCODING=ascii``, a
Latin-1 locale): text it cannot encode is replaced, never a crash; ``--json`` stays exact."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest

from tests.cli.conftest import ROOT, Result
from tether import END, START, Graph, Runtime

TEXT = "café… ünïcode ✓ 😀 " + "x" * 300


class Note(TypedDict, total=False):
    text: str
    reply: str


async def make_run(path: Path) -> str:
    g = Graph(Note, name="encoding_note")
    g.add_node("answer", lambda s: {"reply": s["text"].upper()})
    g.add_edge(START, "answer").add_edge("answer", END)
    wf = g.compile()
    async with Runtime(f"sqlite:///{path}", workflows=[wf], recover=False) as rt:
        res = await rt.run(wf, {"text": TEXT})
    return res.run_id


def run_cli(*args: str, store: str, encoding: str) -> Result:
    """The real command with its output in ``encoding`` (a terminal that is not UTF-8)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "CLI_"))}
    env.update(TETHER_STORE=store, PYTHONIOENCODING=encoding)
    env.pop("COLUMNS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    out, err = proc.stdout.decode(encoding), proc.stderr.decode(encoding)
    return Result(proc.returncode, out, err)


@pytest.fixture
def run(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "enc.db"
    return f"sqlite:///{path}", asyncio.run(make_run(path))


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize(
    "command", [("runs", "list"), ("runs", "show", "RUN"), ("runs", "history", "RUN")]
)
def test_text_output_on_a_terminal_that_is_not_utf8(
    run: tuple[str, str], encoding: str, command: tuple[str, ...]
) -> None:
    url, run_id = run
    args = [run_id if a == "RUN" else a for a in command]
    res = run_cli(*args, store=url, encoding=encoding)
    assert res.rc == 0, res.err
    assert "unexpected" not in res.err and run_id in res.out


@pytest.mark.parametrize("command", [("runs", "show", "RUN"), ("runs", "history", "RUN")])
def test_json_output_stays_exact_on_an_ascii_terminal(
    run: tuple[str, str], command: tuple[str, ...]
) -> None:
    url, run_id = run
    args = [run_id if a == "RUN" else a for a in command]
    res = run_cli("--json", *args, store=url, encoding="ascii")
    assert res.rc == 0, res.err
    assert TEXT.upper() in json.dumps(json.loads(res.out), ensure_ascii=False)
