"""Guarantees 1, 3, 4, 5 under real SIGKILLs: a worker process running a 50-step graph with
parallel nodes is killed at random points; fresh processes pick the run up after the lease
expires. Every run must complete with exactly the expected state, no journaled node may run
again, and every external effect must be applied exactly once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.durability.crash_app import ROUNDS, WORKERS, expected_items

ROOT = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("TETHER_CRASH_TRIALS", "30"))


def _spawn(db: Path, ext: Path, run_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.durability.crash_app", str(db), str(ext), run_id],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _final_state(db: Path, run_id: str) -> tuple[str, dict[str, object]]:
    import asyncio

    from tests.durability.crash_app import workflow
    from tether import Runtime
    from tether.store.sqlite import SqliteStore

    async def read() -> tuple[str, dict[str, object]]:
        async with Runtime(SqliteStore(str(db)), workflows=[workflow], recover=False) as rt:
            run = await rt.get_run(run_id)
            return run.status.value, await rt.get_state(run_id)

    return asyncio.run(read())


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("TETHER_CRASH_SEED", "1234")))
    kills = 0
    for trial in range(TRIALS):
        db, ext = tmp_path / f"runs{trial}.db", tmp_path / f"ext{trial}.db"
        run_id = f"crash-{trial}"
        n_kills = rng.randint(1, 3)
        reached = 0
        for k in range(n_kills):
            proc = _spawn(db, ext, run_id)
            assert proc.stdout is not None
            hello = proc.stdout.readline().strip()
            assert hello == ("STARTED" if k == 0 else "JOINED"), proc.stderr
            # Kill after a random committed step, then a random few ms into the next one: the
            # kill lands mid-step, mid-node, or mid-commit, but always before the run is done.
            target = reached + rng.randint(1, 12)
            while reached < target:
                line = proc.stdout.readline().strip()
                assert line.startswith("STEP "), (line, proc.stderr)
                reached = int(line.split()[1])
            time.sleep(rng.uniform(0, 0.015))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if _final_state(db, run_id)[0] != "COMPLETED":
                kills += 1
        proc = _spawn(db, ext, run_id)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        lines = out.split()
        assert lines[0] == "JOINED" and lines[-1] == "COMPLETED", (out, err[-2000:])

        status, state = _final_state(db, run_id)
        assert status == "COMPLETED"
        assert state["round"] == ROUNDS
        # No update lost, none applied twice: exactly one item per task, in task order.
        assert state["items"] == expected_items()

        edb = sqlite3.connect(ext)
        violations = edb.execute("SELECT task, why FROM violations").fetchall()
        assert violations == [], f"trial {trial}: journaled work ran again: {violations}"
        applied = edb.execute("SELECT COUNT(*), SUM(n) FROM effects").fetchone()
        assert applied == (ROUNDS * len(WORKERS), ROUNDS * len(WORKERS))
        edb.close()
    assert kills >= TRIALS, f"only {kills} SIGKILLs landed mid-run in {TRIALS} trials"
