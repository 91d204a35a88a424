"""Crash takeover without waiting out the lease: a worker SIGKILLed while it holds a run under a
long lease (120 s, far beyond the hang guards) has its run continued at once by the same worker
restarted, or by another process on the host, because both can prove its process is gone. A
live process, even one configured with the same worker id, is never robbed.

No wall-clock bound: a run that waited out its lease would trip the hang guards instead."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.durability.takeover_app import workflow
from tether import RunStatus, Runtime
from tether.core.liveness import Incarnation

ROOT = Path(__file__).resolve().parents[2]
TTL = 120.0
GUARD = 90.0  # hang guard, well under TTL: waiting out the lease fails the test


def _spawn(url: str, run_id: str, gate: Path, mode: str, worker: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TETHER_WORKER_ID": worker}
    args = [url, run_id, str(gate), str(TTL), mode]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.durability.takeover_app", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holding(proc: subprocess.Popen[str]) -> str:
    """Read the worker's lines until its node holds the run; return its owner string."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("HOLDING "):
            return line.split()[1]
    raise AssertionError(f"the worker exited before holding its run: {proc.communicate()[1]}")


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=GUARD) == -signal.SIGKILL


def _runtime(url: str, worker: str) -> Runtime:
    return Runtime(url, owner=worker, workflows=[workflow], lease_ttl=TTL, recover=False)


async def _completed_by(url: str, run_id: str) -> tuple[int, list[str]]:
    """The run's final lease token and the actors of its lifecycle transitions."""
    async with _runtime(url, "reader") as rt:
        run = await rt.get_run(run_id)
        assert run.status is RunStatus.COMPLETED
        actors = [t.actor for t in await rt.store.list_transitions(run_id)]
        return run.lease_token, actors


def test_a_restarted_worker_continues_its_killed_run_at_once(url: str, tmp_path: Path) -> None:
    gate, run_id = tmp_path / "gate", "restart-1"
    first = _spawn(url, run_id, gate, "start", "w-restart")
    try:
        old = _holding(first)
    finally:
        _kill(first)
    gate.touch()
    again = _spawn(url, run_id, gate, "join", "w-restart")
    try:
        out, err = again.communicate(timeout=GUARD)
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert again.returncode == 0, err[-3000:]
    lines = out.splitlines()
    assert lines[-1] == "COMPLETED", (out, err[-3000:])
    new = next(line.split()[1] for line in lines if line.startswith("RESUMED "))
    old_inc, new_inc = Incarnation.parse(old), Incarnation.parse(new)
    assert old_inc is not None and new_inc is not None
    assert old_inc.worker == new_inc.worker == "w-restart" and old_inc.pid != new_inc.pid
    token, actors = asyncio.run(_completed_by(url, run_id))
    assert token == 2  # claimed once, by the restarted worker, while the old lease still ran
    assert f"worker:{old}" in actors and actors[-1] == f"worker:{new}"


async def _takeover(url: str, gate: Path, proc: subprocess.Popen[str], run_id: str) -> None:
    old = await asyncio.to_thread(_holding, proc)
    async with _runtime(url, "w-shared") as twin, _runtime(url, "w-other") as other:
        # a live process is never robbed: not by a twin with its worker id, nor by another
        assert await twin.recover_once() == []
        assert await other.recover_once() == []
        run = await twin.get_run(run_id)
        assert (run.owner, run.lease_token, run.status) == (old, 1, RunStatus.EXECUTING)
        await asyncio.to_thread(_kill, proc)
        gate.touch()
        assert await other.recover_once() == [run_id]  # at once: its lease has ~2 min left
        res = await other.wait(run_id, timeout=GUARD)
        assert (res.status, res.state["by"]) == (RunStatus.COMPLETED, "w-other")
        run = await other.get_run(run_id)
        assert run.lease_token == 2
        assert await twin.recover_once() == []


def test_another_process_takes_over_a_killed_owner_but_never_a_live_one(
    url: str, tmp_path: Path
) -> None:
    gate, run_id = tmp_path / "gate", "takeover-1"
    proc = _spawn(url, run_id, gate, "start", "w-shared")
    try:
        asyncio.run(asyncio.wait_for(_takeover(url, gate, proc, run_id), GUARD))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
