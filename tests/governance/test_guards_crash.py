"""The stuttering check across a SIGKILL: the agent's process dies right after its 3rd refund
was paid and journaled (before the step committed); a new process recovers the run, replays that
refund from the journal (not paid again), and stops the 4th: the count came from the journal,
not from the dead process's memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.governance.refund_app import Ledger, build
from tether import RunStatus, Runtime
from tether.graph.results import RunResult
from tether.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def _agent_process(db: Path, ledger: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tests.governance.refund_app", str(db), str(ledger), run_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_count_survives_a_sigkill(tmp_path: Path) -> None:
    db, path = tmp_path / "runs.db", tmp_path / "ledger.txt"
    ledger = Ledger(path)
    path.with_suffix(".crash").write_text("3")

    first = _agent_process(db, path, "r-runaway")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert len(ledger.refunds()) == 3  # paid, journaled, then the process died

    second = _agent_process(db, path, "r-runaway")
    assert second.returncode == 0, second.stderr
    # ESCALATED, still 3 refunds paid, 3 attempts in the state (the 3rd step re-ran, replayed)
    assert second.stdout.split() == ["ESCALATED", "3", "3"], second.stdout
    async with Runtime(SqliteStore(db), workflows=[build(ledger)]) as rt:
        run = await rt.store.get_run("r-runaway")
        assert run.status is RunStatus.ESCALATED
        assert run.escalation is not None
        assert run.escalation["details"]["guard"] == "stutter"
        assert run.escalation["details"]["count"] == 3
        again = await rt.resume("r-runaway", {"raise_limit": {"stutter": 4}})
        assert isinstance(again, RunResult) and again.status is RunStatus.ESCALATED
        assert again.escalation is not None and again.escalation["details"]["count"] == 4
    assert len(ledger.refunds()) == 4
