"""Resuming a parked run from a fresh process: nothing is imported on the resume's clock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

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
