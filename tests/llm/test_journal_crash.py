"""Guarantee 3 for models: a model call journaled before a SIGKILL is not paid for again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _worker(db: Path, counter: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_COUNTER": str(counter)}
    return subprocess.run(
        [sys.executable, "-m", "tests.llm.crash_model_app", str(db), run_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_resumed_run_replays_the_journaled_model_call(tmp_path: Path) -> None:
    db, counter = tmp_path / "runs.db", tmp_path / "calls.txt"
    counter.with_suffix(".crash").touch()

    first = _worker(db, counter, "r-model")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert counter.read_text().splitlines() == ["why?"], "the model answered once, then the crash"

    second = _worker(db, counter, "r-model")
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == [
        "COMPLETED",
        "answer",
        "to",
        "summarise:",
        "answer",
        "to",
        "why?",
    ]
    # the re-run of `ask` got the journaled answer: the model was called once for it, ever
    assert counter.read_text().splitlines() == ["why?", "summarise: answer to why?"]


def test_without_a_crash_each_call_is_made_once(tmp_path: Path) -> None:
    db, counter = tmp_path / "runs.db", tmp_path / "calls.txt"
    done = _worker(db, counter, "r-clean")
    assert done.returncode == 0, done.stderr
    assert len(counter.read_text().splitlines()) == 2
