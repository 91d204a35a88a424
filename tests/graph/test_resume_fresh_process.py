"""Resuming a parked run from a fresh process: nothing is imported on the resume's clock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

_APP = textwrap.dedent(
    """
    import asyncio, json, sys
    from typing import TypedDict

    from tether import END, START, Graph, Runtime, interrupt


    class S(TypedDict):
        answer: str


    def ask(state: S) -> dict[str, str]:
        return {"answer": str(interrupt("ok?"))}


    g = Graph(S, name="fresh_resume")
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    wf = g.compile()


    async def park(url: str) -> None:
        async with Runtime(url, workflows=[wf]) as rt:
            res = await rt.run(wf, {"answer": ""})
            print(json.dumps({"run_id": res.run_id, "status": str(res.status)}))


    async def resume(url: str, run_id: str) -> None:
        async with Runtime(url, workflows=[wf]) as rt:
            before = set(sys.modules)
            res = await rt.resume(run_id, "yes")
            new = sorted(set(sys.modules) - before)
        print(json.dumps({"status": str(res.status), "state": res.state, "imported": new}))


    if sys.argv[1] == "park":
        asyncio.run(park(sys.argv[2]))
    else:
        asyncio.run(resume(sys.argv[2], sys.argv[3]))
    """
)


def _run(app: Path, *args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(app), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_a_fresh_process_resumes_without_importing_anything(tmp_path: Path) -> None:
    """Every module a resume needs is loaded with the runtime, not while the answer waits:
    an import on that path (compiled from source where bytecode is not written) costs more
    than the whole resume."""
    app = tmp_path / "app.py"
    app.write_text(_APP)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    parked = _run(app, "park", url)
    assert parked["status"] == "ESCALATED"
    done = _run(app, "resume", url, str(parked["run_id"]))
    assert done["status"] == "COMPLETED" and done["state"] == {"answer": "yes"}
    assert done["imported"] == []


async def test_the_first_recovery_sweep_leaves_the_loop_to_the_first_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runtime opened to resume one run does that first: the recovery sweep's queries (a
    scan for dead owners, a claim) do not interleave with the resume's commits."""
    from typing import TypedDict

    from tether import END, START, Graph, Runtime, interrupt
    from tether.graph import runtime as runtime_mod
    from tether.store import SqliteStore

    class S(TypedDict):
        answer: str

    def ask(state: S) -> dict[str, str]:
        return {"answer": str(interrupt("ok?"))}

    g = Graph(S, name="grace")
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    wf = g.compile()
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with Runtime(url, workflows=[wf], recover=False) as rt:
        parked = await rt.run(wf, {"answer": ""})
    calls: list[str] = []
    claim, commit = SqliteStore.claim_runs, SqliteStore.commit

    async def spy_claim(self: SqliteStore, *a: Any, **k: Any) -> Any:
        calls.append("claim")
        return await claim(self, *a, **k)

    async def spy_commit(self: SqliteStore, *a: Any, **k: Any) -> Any:
        calls.append("commit")
        return await commit(self, *a, **k)

    monkeypatch.setattr(SqliteStore, "claim_runs", spy_claim)
    monkeypatch.setattr(SqliteStore, "commit", spy_commit)
    monkeypatch.setattr(runtime_mod, "STARTUP_GRACE", 60.0)  # however slow the machine
    async with Runtime(url, workflows=[wf], poll_interval=60.0) as rt:
        done = await rt.resume(parked.run_id, "yes")
    assert done.state == {"answer": "yes"}
    assert calls and "claim" not in calls  # without the grace the sweep ran mid-resume
