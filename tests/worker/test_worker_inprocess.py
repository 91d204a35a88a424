"""``Worker`` in this process, on a SQLite file: registry row and heartbeat, drain at a step
boundary, grace expiry, immediate stop, and takeover of a worker whose heartbeat row is stale
(it died on another host: nothing here can prove it dead but the registry)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, Retention, RunContext, RunNotFoundError, RunStatus, Runtime
from tether.core.errors import ConfigurationError
from tether.core.liveness import Incarnation
from tether.store.sqlite import SqliteStore
from tether.store.workers import WorkerRecord, WorkerRegistry
from tether.testing.clock import FakeClock
from tether.worker import Worker

GUARD = 60.0


class S(TypedDict, total=False):
    i: int
    log: list[str]


gates: dict[str, asyncio.Event] = {}
entered: dict[str, asyncio.Event] = {}


async def step(state: S, ctx: RunContext) -> dict[str, Any]:
    i = state.get("i", 0)
    if i == 1 and ctx.run_id in gates:  # the second step waits for the test
        entered[ctx.run_id].set()
        await gates[ctx.run_id].wait()
    return {"i": i + 1}


g = Graph(S, name="three_steps")
g.add_node("step", step)
g.add_edge(START, "step")
g.add_conditional_edges("step", lambda s: "step" if s.get("i", 0) < 3 else END, ["step", END])
wf = g.compile()


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


async def _until(what: str, check: Any) -> Any:
    async def loop() -> Any:
        while not (got := await check()):
            await asyncio.sleep(0.01)
        return got

    try:
        return await asyncio.wait_for(loop(), GUARD)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _submit(tmp_path: Path, gated: bool) -> str:
    async with Runtime(url(tmp_path), workflows=[wf], recover=False) as rt:
        handle = await rt.submit(wf, {})
    if gated:
        gates[handle.run_id], entered[handle.run_id] = asyncio.Event(), asyncio.Event()
    return handle.run_id


async def test_worker_registers_beats_and_deregisters(tmp_path: Path) -> None:
    worker = Worker(url(tmp_path), [wf], concurrency=3, lease_ttl=0.6, queues=None)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), GUARD)
    reg = worker.store
    assert isinstance(reg, WorkerRegistry)
    (row,) = await reg.list_workers()
    assert (row.owner, row.worker_id, row.concurrency, row.stopped_at) == (
        worker.owner,
        worker.worker_id,
        3,
        None,
    )
    first = row.heartbeat_at
    await _until("a heartbeat", lambda: _beat_after(reg, first))
    assert worker.beat is not None and worker.beat.beats >= 1
    worker.stop()
    assert await asyncio.wait_for(task, GUARD) == 0
    store = SqliteStore(tmp_path / "runs.db")
    await store.setup()
    try:
        (row,) = await store.list_workers()
        assert row.stopped_at is not None
    finally:
        await store.close()


async def _beat_after(reg: WorkerRegistry, t: float) -> bool:
    return any(w.heartbeat_at > t for w in await reg.list_workers())


async def test_stop_drains_at_the_next_step_boundary(tmp_path: Path) -> None:
    run_id = await _submit(tmp_path, gated=True)
    worker = Worker(url(tmp_path), [wf], concurrency=2, poll_interval=0.02)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(entered[run_id].wait(), GUARD)  # step 2 runs here
    worker.stop()
    await _until("the drain", lambda: _true(worker.runtime.draining))
    gates[run_id].set()  # step 2 finishes; the run stops before step 3
    assert await asyncio.wait_for(task, GUARD) == 0
    async with Runtime(url(tmp_path), workflows=[wf], recover=False) as rt:
        run = await rt.get_run(run_id)
        assert run.status is RunStatus.EXECUTING and run.owner is None
        assert run.step == 2  # step 2 committed, step 3 not started
        events = [e.type async for e in rt.events(run_id, follow=False)]
        assert "handed_back" in events
    # another worker continues it from step 3 at once
    other = Worker(url(tmp_path), [wf], poll_interval=0.02)
    other_task = asyncio.create_task(other.run())
    async with Runtime(url(tmp_path), workflows=[wf], recover=False) as rt:
        res = await asyncio.wait_for(rt.wait(run_id), GUARD)
    other.stop()
    await asyncio.wait_for(other_task, GUARD)
    assert res.status is RunStatus.COMPLETED and res.state["i"] == 3


async def _true(value: bool) -> bool:
    return value


@pytest.mark.parametrize("immediate", [False, True])
async def test_a_step_outliving_grace_is_released_mid_step(tmp_path: Path, immediate: bool) -> None:
    run_id = await _submit(tmp_path, gated=True)
    worker = Worker(url(tmp_path), [wf], poll_interval=0.02, grace=0.0 if not immediate else 3600)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(entered[run_id].wait(), GUARD)
    worker.stop(immediate=immediate)
    assert await asyncio.wait_for(task, GUARD) == (130 if immediate else 0)
    async with Runtime(url(tmp_path), workflows=[wf], recover=False) as rt:
        run = await rt.get_run(run_id)
        assert run.owner is None and run.step == 1  # step 2 never committed: it runs again
    gates.pop(run_id)
    other = Worker(url(tmp_path), [wf], poll_interval=0.02)
    other_task = asyncio.create_task(other.run())
    async with Runtime(url(tmp_path), workflows=[wf], recover=False) as rt:
        res = await asyncio.wait_for(rt.wait(run_id), GUARD)
    other.stop()
    await asyncio.wait_for(other_task, GUARD)
    assert res.status is RunStatus.COMPLETED


async def test_a_stale_workers_runs_are_taken_over_before_their_lease_expires(
    tmp_path: Path,
) -> None:
    """A worker on another host (its incarnation cannot be checked here) holds a run under a
    one-hour lease and its registry row stops beating: the run is taken at once."""
    run_id = await _submit(tmp_path, gated=False)
    ghost = Incarnation("ghost", "other-host", "bootx", "1", 4242, 1, "n").encode()
    store = SqliteStore(tmp_path / "runs.db")
    await store.setup()
    try:
        assert await store.acquire_lease(run_id, ghost, 3600.0) is not None
        await store.register_worker(WorkerRecord(ghost, "ghost", "other-host", 4242, 0.0))
    finally:
        await store.close()
    worker = Worker(url(tmp_path), [wf], poll_interval=0.02, stale_after=0.05)
    task = asyncio.create_task(worker.run())
    async with Runtime(url(tmp_path), workflows=[wf], recover=False) as rt:
        res = await asyncio.wait_for(rt.wait(run_id), GUARD)
    worker.stop()
    await asyncio.wait_for(task, GUARD)
    assert res.status is RunStatus.COMPLETED


async def test_a_live_workers_runs_are_left_alone(tmp_path: Path) -> None:
    """The same ghost, beating: its row is fresh, so its lease stands."""
    worker = Worker(url(tmp_path), [wf], stale_after=3600.0)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), GUARD)
    reg = worker.store
    assert isinstance(reg, WorkerRegistry)
    ghost = Incarnation("ghost", "other-host", "bootx", "1", 4242, 1, "n").encode()
    await reg.register_worker(WorkerRecord(ghost, "ghost", "other-host", 4242, 0.0))
    assert await worker._stale_owners([ghost]) == []
    worker.stale_after = 0.0
    await _until("the ghost to go stale", lambda: worker._stale_owners([ghost]))
    worker.stop()
    await asyncio.wait_for(task, GUARD)


async def test_a_drift_watching_worker_checks_completed_runs_and_stops_at_once(
    tmp_path: Path,
) -> None:
    from tests.evaluation.test_drift import KeywordEmbedder
    from tests.worker.drift_app import workflow as helpdesk
    from tether.evaluation import DriftMonitor, drift_flags

    with pytest.raises(ConfigurationError):
        Worker(url(tmp_path), [helpdesk], drift="helpdesk")  # a name, not a list of names
    worker = Worker(
        url(tmp_path), [helpdesk], poll_interval=0.02, drift=True,
        drift_monitor=DriftMonitor(KeywordEmbedder()),
    )  # fmt: skip
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), GUARD)
    assert worker.drift is not None and [f.workflow for f in worker.drift.feeds] == ["helpdesk"]
    async with Runtime(url(tmp_path), workflows=[helpdesk], recover=False) as rt:
        question = "How do I reset my password?"
        ok = await rt.submit(helpdesk, {"question": question, "draft": "reset the password"})
        off = await rt.submit(helpdesk, {"question": question, "draft": "revenue grew"})
        drift = worker.drift
        await _until("both runs checked", lambda: _true(drift.checked == 2))
        flags = await drift_flags(rt.store, workflow="helpdesk")
        assert [(f.run_id, f.score) for f in flags] == [(off.run_id, 0.0)]
        assert await drift_flags(rt.store, run_id=ok.run_id) == []
    worker.stop(immediate=True)
    assert await asyncio.wait_for(task, GUARD) == 130


async def test_a_worker_with_retention_purges_old_finished_runs(tmp_path: Path) -> None:
    """``Worker(retention=...)`` (``tether worker --purge-after 30d --keep-last N``): the worker's
    runtime sweeps runs that finished longer ago than the TTL, and prunes what it finishes."""
    clock = FakeClock(1_000_000.0)
    store = SqliteStore(tmp_path / "runs.db", clock=clock)
    async with Runtime(store, workflows=[wf], recover=False, clock=clock) as rt:
        old = (await rt.submit(wf, {})).run_id
    retention = Retention(keep_last=1, finished_ttl=60.0, sweep_interval=0.01)
    worker = Worker(
        SqliteStore(tmp_path / "runs.db", clock=clock),
        [wf],
        poll_interval=0.02,
        clock=clock,
        retention=retention,
    )
    task = asyncio.create_task(worker.run())
    try:
        res = await asyncio.wait_for(worker.runtime.wait(old), GUARD)
        assert res.status is RunStatus.COMPLETED
        await _until(
            "the finished run pruned to its last checkpoint",
            lambda: _history_is(worker.runtime, old, 1),
        )
        clock.advance(120.0)
        await _until("the old run purged", lambda: _gone(worker.runtime, old))
    finally:
        worker.stop()
        await asyncio.wait_for(task, GUARD)


async def _history_is(rt: Runtime, run_id: str, n: int) -> bool:
    return len(await rt.history(run_id)) == n


async def _gone(rt: Runtime, run_id: str) -> bool:
    try:
        await rt.get_run(run_id)
    except RunNotFoundError:
        return True
    return False


@pytest.mark.parametrize(
    "setting",
    [
        {"grace": float("nan")},
        {"grace": -1},
        {"heartbeat_interval": float("nan")},
        {"stale_after": float("nan")},  # before: taken, and a dead worker was never stale
        {"stale_after": float("inf")},
        {"forget_after": 0},
        {"lease_ttl": float("nan")},
    ],
)
def test_worker_settings_that_would_misbehave_silently_are_refused(
    setting: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="must be a finite number of seconds"):
        Worker(url(tmp_path), [wf], **setting)


@pytest.mark.parametrize("concurrency", [10**11, 2**31, 0, -1, True, 2.5])
def test_a_concurrency_no_worker_can_have_is_refused_with_its_range(
    concurrency: Any, tmp_path: Path
) -> None:
    # 10**11 (a typo) was taken, then PostgreSQL's registry refused the row at start-up with
    # "unexpected NumericValueOutOfRange: integer out of range"
    with pytest.raises(ConfigurationError, match="concurrency must be"):
        Worker(url(tmp_path), [wf], concurrency=concurrency)


async def test_a_queue_named_twice_is_served_and_registered_once(tmp_path: Path) -> None:
    # `tether worker --queues billing,billing,default` printed and registered
    # "billing,billing,default" (the runtime served each once)
    worker = Worker(url(tmp_path), [wf], queues=["default", "billing", "billing"])
    assert worker.queues == ["billing", "default"]
    assert worker.record().queues == ["billing", "default"]
