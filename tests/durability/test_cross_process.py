"""Interrupt in one process, resume in another; the pre-interrupt effect happens once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.durability.approval_app", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_interrupt_in_one_process_resume_in_another(tmp_path: Path) -> None:
    db, ledger = str(tmp_path / "runs.db"), str(tmp_path / "ledger.db")
    first = _run("start", db, "order-1", ledger)
    assert first["status"] == "ESCALATED"
    assert first["interrupts"][0]["payload"] == {"question": "ship order charged as ch_1?"}  # type: ignore[index]

    second = _run("resume", db, "order-1", "yes")
    assert second["status"] == "COMPLETED"
    assert second["state"] == {"amount": 42, "charge_id": "ch_1", "approved": True}
    charges = sqlite3.connect(ledger).execute("SELECT COUNT(*) FROM charges").fetchone()[0]
    assert charges == 1, "the node re-ran on resume but its journaled charge must not repeat"
