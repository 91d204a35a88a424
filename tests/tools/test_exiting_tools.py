"""A tool that raises ``SystemExit`` (a ``sys.exit()`` deep in a CLI library), a
``BaseException`` of its own, or ``KeyboardInterrupt`` in its worker thread fails its call with
a ``ToolError``, as any other exception does; it neither ends the worker's process nor stops
its event loop. Run in a process of its own (``exiting_tools_app``), since without that
guarantee the process ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tool_that_exits_fails_its_call_and_not_the_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.tools.exiting_tools_app", str(tmp_path / "runs.db")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, (proc.returncode, lines, proc.stderr[-3000:])
    calls = [line for line in lines if "tool" in line]
    assert len(calls) == 10, lines
    for call in calls:
        assert call["ok"] is False and call["error"] == "ToolError", call
        assert call["message"].startswith(f"tool {call['tool']!r} raised "), call
    by_tool = {c["tool"]: c["message"] for c in calls if c["where"] == "direct"}
    assert "SystemExit" in by_tool["cli_wrapper"] and "sys.exit" in by_tool["cli_wrapper"]
    assert "unknown flag --x" in by_tool["async_exit"]
    assert "KeyboardInterrupt" in by_tool["sync_interrupt"]
    assert "Abort: aborted" in by_tool["async_abort"]
    assert lines[-1] == {"run": "COMPLETED", "out": "done"}
