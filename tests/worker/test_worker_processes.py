"""``tether worker`` as real processes on a throwaway PostgreSQL (and on a SQLite file):
SIGKILL of one worker among three, four workers under a short lease with no kills, SIGTERM in
the middle of a step. No wall-clock bound: each wait is on a condition, with a generous guard;
the delays a test measures are printed (``-s``), never asserted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.worker.procs import (
    GUARD,
    ROOT,
    WorkerProc,
    effects_by_pid,
    lines,
    pythonpath,
    repeated_effects,
    spawn,
    stop_all,
    wait_until,
)
from tests.worker.worker_app import workflow
from tether import RunStatus, Runtime
from tether.core.lifecycle import ACTIVE
from tether.store.protocol import RunStore
from tether.store.types import RunRecord
from tether.store.url import open_store

pytestmark = pytest.mark.slow


def run_sync(coro: Any) -> Any:
    return asyncio.run(coro)


async def _submit(url: str, n: int, input: dict[str, Any]) -> list[str]:
    async with Runtime(url, workflows=[workflow], recover=False) as rt:
        return [(await rt.submit(workflow, input)).run_id for _ in range(n)]


async def _runs(url: str) -> list[RunRecord]:
    store = open_store(url)
    await store.setup()
    try:
        return await _all_runs(store)
    finally:
        await store.close()


async def _all_runs(store: RunStore) -> list[RunRecord]:
    out: list[RunRecord] = []
    while True:
        page = await store.list_runs(limit=1000, before=out[-1].run_id if out else None)
        out += page
        if len(page) < 1000:
            return out


class _Watch:
    """``_watch`` in a thread of its own, begun at once; ``join()`` re-raises its failure."""

    def __init__(self, url: str, done: Any) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(url, done), daemon=True)
        self.thread.start()

    def _run(self, url: str, done: Any) -> None:
        try:
            run_sync(_watch(url, done))
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


async def _watch(url: str, done: Any, every: float = 0.005) -> None:
    """Look at every run through one open store until ``done(runs)`` says so (a store opened
    per look costs a connection and a schema check: on a loaded machine the looks grew so far
    apart that a whole backlog could pass between two of them)."""
    store = open_store(url)
    await store.setup()
    try:
        deadline = time.monotonic() + GUARD
        while not done(await _all_runs(store)):
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            await asyncio.sleep(every)
    finally:
        await store.close()


def runs(url: str) -> list[RunRecord]:
    return run_sync(_runs(url))


def count(url: str, statuses: Sequence[RunStatus]) -> int:
    return sum(r.status in statuses for r in runs(url))


async def _with_store(url: str, fn: Any) -> Any:
    store: RunStore = open_store(url)
    await store.setup()
    try:
        return await fn(store)
    finally:
        await store.close()


def escalation_kinds(url: str) -> dict[str, str]:
    return {
        r.run_id: (r.escalation or {}).get("kind", "")
        for r in runs(url)
        if r.status is RunStatus.ESCALATED
    }


def check_settled(url: str, n: int, victim: str) -> dict[str, str]:
    """Every run COMPLETED, except runs the killed worker held mid-effect, which escalate as
    an effect of unknown outcome (never re-performed). Returns those escalations."""
    got = runs(url)
    assert len(got) == n
    esc = escalation_kinds(url)
    assert all(kind == "unknown_effect_outcome" for kind in esc.values()), esc

    async def actors(store: RunStore) -> list[set[str]]:
        return [{t.actor for t in await store.list_transitions(r)} for r in esc]

    # each one was executed by the killed worker before another worker found its effect open
    assert all(f"worker:{victim}" in a for a in run_sync(_with_store(url, actors)))
    assert sum(r.status is RunStatus.COMPLETED for r in got) == n - len(esc)
    return esc


def check_keyed(
    url: str, sink: Path, n: int, input: dict[str, Any], victim: str
) -> list[tuple[str, str]]:
    """Keyed effects (``worker_app``): every step's effect delivered, and a key sent twice
    only for a run the killed worker executed (taken over mid-call). Returns the re-sends."""
    keys = {p.name for p in (sink / "keys").iterdir()}
    assert len(keys) == n * input["steps"]
    resent = [(run, step) for _, run, step, _ in lines(sink / "resent.log")]

    async def actors(store: RunStore) -> list[set[str]]:
        return [{t.actor for t in await store.list_transitions(r)} for r, _ in resent]

    assert all(f"worker:{victim}" in a for a in run_sync(_with_store(url, actors)))
    return resent


def settled(url: str, n: int) -> bool:
    return count(url, [RunStatus.COMPLETED, RunStatus.ESCALATED, RunStatus.FAILED]) >= n


def sigterm_all(workers: Sequence[WorkerProc]) -> list[int]:
    for w in workers:
        w.signal(signal.SIGTERM)
    return [w.wait() for w in workers]


def workers_list(url: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "tether.cli", "workers", "list", "--json", "--store", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def kill_mid_way(
    url: str, tmp_path: Path, n: int, n_workers: int, input: dict[str, Any], args: list[str]
) -> None:
    """Submit ``n`` runs, start the workers, SIGKILL the first once a quarter of the runs
    are done, and check that all the rest completes with no effect performed twice."""
    sink = tmp_path / "sink"
    sink.mkdir()
    run_sync(_submit(url, n, {**input, "sink": str(sink)}))
    workers = [spawn(url, tmp_path, "w0", *args)]
    try:
        victim = workers[0]

        held: set[str] = set()
        looks = [0]

        def mid_way(now: list[RunRecord]) -> bool:
            looks[0] += 1
            done = sum(r.status is RunStatus.COMPLETED for r in now)
            held.clear()
            held.update(r.run_id for r in now if r.owner == victim.owner and r.status in ACTIVE)
            return done >= n // 4 and bool(held)

        # the watch starts with the victim: on a slow machine starting the other workers took
        # longer than the victim needed for the whole backlog, and a watch begun after them
        # only ever saw every run done
        watch = _Watch(url, mid_way)
        workers += [spawn(url, tmp_path, f"w{i}", *args) for i in range(1, n_workers)]
        try:
            watch.join()
        except AssertionError:  # say what the store and the workers showed
            now = runs(url)
            by = {(r.owner, r.status.value) for r in now}
            raise AssertionError(
                "timed out waiting for a quarter of the runs done, the victim holding some, "
                f"after {looks[0]} looks: "
                f"{sum(r.status is RunStatus.COMPLETED for r in now)} of {n} done; "
                f"(owner, status) seen: {sorted(map(str, by))[:12]}; effects by pid: "
                f"{effects_by_pid(sink)} (victim pid {victim.pid}, owner {victim.owner}); "
                f"victim stderr: {victim.stderr()[-2000:]}"
            ) from None
        victim.kill()  # holding runs: it held some a moment ago and the backlog is long
        killed_at = time.time()

        def taken() -> bool:
            return not any(r.owner == victim.owner for r in runs(url) if r.status in ACTIVE)

        wait_until("the killed worker's runs taken over", taken)
        taken_at = time.time()
        rows = run_sync(_with_store(url, lambda s: s.list_workers()))
        row = next(w for w in rows if w.owner == victim.owner)
        wait_until("every run settled", lambda: settled(url, n))
        done_at = time.time()
        esc = check_settled(url, n, victim.owner)
        assert repeated_effects(sink) == []
        resent = check_keyed(url, sink, n, input, victim.owner) if input.get("keyed") else []
        assert not (esc and input.get("keyed"))  # an idempotent effect is sent again instead
        assert effects_by_pid(sink)[victim.pid] > 0  # it did work before it died
        stale_after = 2 * (float(args[args.index("--lease-ttl") + 1]) / 3)
        print(
            f"\n{n} runs, {n_workers} workers: killed one (it held {len(held)} run(s) just "
            "before); taken "
            f"over {taken_at - killed_at:.2f}s after the kill "
            f"({taken_at - (row.heartbeat_at + stale_after):+.2f}s from its heartbeat going "
            f"stale); all settled {done_at - killed_at:.2f}s after the kill; "
            f"{len(esc)} escalated mid-effect (unknown outcome, not re-performed), "
            f"{len(resent)} keyed effect(s) sent again after the kill (deduped downstream)"
        )
        codes = sigterm_all(workers[1:])
        assert codes == [0] * (n_workers - 1)
        listed = {w["owner"]: w for w in workers_list(url)}
        assert listed[victim.owner]["stopped_at"] is None  # died: never deregistered
        assert all(listed[w.owner]["stopped_at"] is not None for w in workers[1:])
    finally:
        stop_all(workers)


@pytest.mark.postgres
def test_sigkill_one_of_three_workers_postgres(pg_url: str, tmp_path: Path) -> None:
    """500 runs whose effect is keyed (idempotent, deduped downstream): all complete, each
    effect delivered once; the killed worker's calls in flight are sent again, not escalated."""
    args = ["--concurrency", "16", "--lease-ttl", "6", "--poll-interval", "0.05"]
    # steps long enough that the backlog outlasts a few looks at the store on a loaded machine
    # (at 20-60 ms the 500 runs took ~1.5 s, and a CI run once missed the moment to kill)
    kill_mid_way(pg_url, tmp_path, 500, 3, {"steps": 2, "ms": [80, 160], "keyed": True}, args)


def test_sigkill_one_of_two_workers_sqlite(tmp_path: Path) -> None:
    """Embedded mode: the same worker on a SQLite file, smaller."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["--concurrency", "8", "--lease-ttl", "6", "--poll-interval", "0.05"]
    kill_mid_way(url, tmp_path, 120, 2, {"steps": 4, "ms": [50, 100]}, args)


@pytest.mark.postgres
def test_four_live_workers_never_take_each_others_runs(pg_url: str, tmp_path: Path) -> None:
    """300 ten-step runs (10-50 ms steps), 4 workers, lease_ttl=2 s, no kills: each run is
    executed by the one worker that claimed it, no lease is ever lost, nothing escalates."""
    n = 300
    sink = tmp_path / "sink"
    sink.mkdir()
    args = ["--concurrency", "24", "--lease-ttl", "2", "--poll-interval", "0.05"]
    workers = [spawn(pg_url, tmp_path, f"w{i}", *args) for i in range(4)]
    try:
        started = time.time()
        run_ids = run_sync(_submit(pg_url, n, {"sink": str(sink), "steps": 10, "ms": [10, 50]}))
        wait_until("every run settled", lambda: settled(pg_url, n), guard=600)
        took = time.time() - started
        assert count(pg_url, [RunStatus.COMPLETED]) == n  # 0 escalations, 0 failures

        async def actors(store: RunStore) -> dict[str, set[str]]:
            out = {}
            for run_id in run_ids:
                trs = await store.list_transitions(run_id)
                out[run_id] = {t.actor for t in trs if t.actor.startswith("worker:")}
            return out

        by_run = run_sync(_with_store(pg_url, actors))
        takeovers = sum(len(a) - 1 for a in by_run.values())
        assert all(len(a) == 1 for a in by_run.values()), takeovers
        assert sigterm_all(workers) == [0] * 4
        lost = [w.stderr().count("lease lost") for w in workers]
        print(f"\n{n} x 10 steps on 4 workers: {n / took:.0f} runs/s, takeovers {takeovers}")
        assert lost == [0] * 4
        assert repeated_effects(sink) == []
        assert len(lines(sink / "effects.log")) == 10 * n
        per_worker = effects_by_pid(sink)
        assert len(per_worker) == 4, per_worker  # everyone worked
    finally:
        stop_all(workers)


def _draining(w: WorkerProc) -> bool:
    return "SIGTERM, draining" in w.stderr()


@pytest.mark.postgres
@pytest.mark.parametrize("finishes", [True, False], ids=["step-finishes", "grace-runs-out"])
def test_sigterm_mid_step(pg_url: str, tmp_path: Path, finishes: bool) -> None:
    """SIGTERM while a step runs: with enough grace the step finishes, is committed, and the
    run is handed back before its next step; when grace runs out the step is abandoned (never
    committed, its effect never performed) and the run released. Either way the stopped worker
    exits 0 owning nothing, and another worker finishes the run."""
    sink, gate = tmp_path / "sink", tmp_path / "gate"
    sink.mkdir()
    (run_id,) = run_sync(
        _submit(pg_url, 1, {"sink": str(sink), "steps": 2, "ms": [0, 0], "gate": str(gate)})
    )
    grace = "60" if finishes else "0.2"
    a = spawn(pg_url, tmp_path, "a", "--grace", grace, "--poll-interval", "0.05")
    b: WorkerProc | None = None
    try:
        wait_until("step 1 to begin", lambda: lines(sink / "begin.log"))
        a.signal(signal.SIGTERM)
        wait_until("worker a to drain", lambda: _draining(a))
        if finishes:
            gate.touch()  # the step in flight finishes now
        assert a.wait() == 0
        (run,) = runs(pg_url)
        assert run.owner is None and run.status in ACTIVE
        assert run.step == (1 if finishes else 0)
        gate.touch()
        b = spawn(pg_url, tmp_path, "b", "--poll-interval", "0.05")
        wait_until("the run to complete", lambda: settled(pg_url, 1))
        (run,) = runs(pg_url)
        assert run.status is RunStatus.COMPLETED
        effects = lines(sink / "effects.log")
        assert repeated_effects(sink) == []
        by = {int(step): int(pid) for _, _, step, pid in effects}
        assert by == ({0: a.pid, 1: b.pid} if finishes else {0: b.pid, 1: b.pid})
        begun = [int(step) for _, _, step, _ in lines(sink / "begin.log")]
        assert begun == ([0, 1] if finishes else [0, 0, 1])
    finally:
        stop_all([w for w in (a, b) if w is not None])
    assert run_id == run.run_id


@pytest.mark.postgres
def test_a_frozen_workers_runs_are_taken_over_by_its_stale_heartbeat(
    pg_url: str, tmp_path: Path
) -> None:
    """SIGSTOP: the process is alive (nothing on this host can prove it dead) and holds its run
    under a 300 s lease, but its registry heartbeat stops: another worker takes the run over
    after two heartbeat intervals. Woken again (SIGCONT), the frozen worker is fenced out: its
    step's effect is never performed twice."""
    sink, gate = tmp_path / "sink", tmp_path / "gate"
    sink.mkdir()
    run_sync(_submit(pg_url, 1, {"sink": str(sink), "steps": 2, "ms": [0, 0], "gate": str(gate)}))
    args = ["--lease-ttl", "300", "--heartbeat", "0.3", "--poll-interval", "0.05"]
    a = spawn(pg_url, tmp_path, "a", *args)
    b: WorkerProc | None = None
    try:
        wait_until("worker a to begin the step", lambda: lines(sink / "begin.log"))
        b = spawn(pg_url, tmp_path, "b", *args)
        a.signal(signal.SIGSTOP)
        stopped_at = time.time()
        wait_until("worker b to take the run over", lambda: len(lines(sink / "begin.log")) == 2)
        taken_at = time.time()
        rows = run_sync(_with_store(pg_url, lambda s: s.list_workers()))
        stale_at = next(w.heartbeat_at + 2 * w.heartbeat_every for w in rows if w.owner == a.owner)
        print(
            f"\nfrozen worker's run taken over {taken_at - stopped_at:.2f}s after SIGSTOP, "
            f"{taken_at - stale_at:.2f}s after its heartbeat went stale (step begun again)"
        )
        (run,) = runs(pg_url)
        assert run.owner == b.owner
        a.signal(signal.SIGCONT)
        gate.touch()
        wait_until("the run to complete", lambda: settled(pg_url, 1))
        (run,) = runs(pg_url)
        assert run.status is RunStatus.COMPLETED
        wait_until("worker a to find its lease lost", lambda: "lease lost" in a.stderr())
        assert repeated_effects(sink) == []
        assert {int(pid) for *_, pid in lines(sink / "effects.log")} == {b.pid}
        assert sigterm_all([a, b]) == [0, 0]
    finally:
        stop_all([w for w in (a, b) if w is not None])


@pytest.mark.postgres
def test_sigint_twice_stops_at_once(pg_url: str, tmp_path: Path) -> None:
    """Ctrl-C once drains (the step in flight may take its whole grace); Ctrl-C again stops
    now: exit 130, the run released mid-step for another worker."""
    sink, gate = tmp_path / "sink", tmp_path / "gate"
    sink.mkdir()
    run_sync(_submit(pg_url, 1, {"sink": str(sink), "steps": 1, "ms": [0, 0], "gate": str(gate)}))
    a = spawn(pg_url, tmp_path, "a", "--grace", "3600", "--poll-interval", "0.05")
    try:
        wait_until("the step to begin", lambda: lines(sink / "begin.log"))
        a.signal(signal.SIGINT)
        wait_until("worker a to drain", lambda: "SIGINT, draining" in a.stderr())
        a.signal(signal.SIGINT)
        assert a.wait() == 130
        (run,) = runs(pg_url)
        assert run.owner is None and run.status in ACTIVE and run.step == 0
        assert not lines(sink / "effects.log")
    finally:
        a.kill()


def test_sigint_after_sigterm_stops_at_once(tmp_path: Path) -> None:
    """A SIGTERM drains and says "SIGINT to stop now": a Ctrl-C then stops at once (it used
    to drain on, the step in flight holding the worker for its whole grace), while a second
    SIGTERM leaves the drain going. Exit 130, the run released mid-step for another worker."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    sink, gate = tmp_path / "sink", tmp_path / "gate"
    sink.mkdir()
    run_sync(_submit(url, 1, {"sink": str(sink), "steps": 1, "ms": [0, 0], "gate": str(gate)}))
    a = spawn(url, tmp_path, "a", "--grace", "3600", "--poll-interval", "0.05")
    try:
        wait_until("the step to begin", lambda: lines(sink / "begin.log"))
        a.signal(signal.SIGTERM)
        wait_until("worker a to drain", lambda: _draining(a))
        assert "SIGINT to stop now" in a.stderr()
        a.signal(signal.SIGTERM)
        wait_until("the second SIGTERM", lambda: "already draining" in a.stderr())
        assert a.proc.poll() is None  # still draining: the step waits on its gate
        a.signal(signal.SIGINT)
        assert a.wait() == 130
        (run,) = runs(url)
        assert run.owner is None and run.status in ACTIVE and run.step == 0
        assert not lines(sink / "effects.log")
    finally:
        a.kill()
