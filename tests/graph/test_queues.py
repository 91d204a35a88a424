"""Queues at the runtime level: wake-up without polling, named queues, delays, backpressure and
limits shared by several runtimes (sampled from the store while they run)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunStatus, Runtime
from tether.core.errors import (
    ConfigurationError,
    IdempotencyConflictError,
    InvalidInputError,
    QueueFullError,
)
from tether.core.tenants import check_tenant_name
from tether.store.memory import MemoryStore
from tether.store.queue_limits import QueueControl

from .conftest import PG_DSN, pg_schema

NEVER = 3600.0
"""A poll interval no test waits for: only a wake-up can start a run."""
DEADLINE = 60.0


class S(TypedDict):
    n: int


def one_step(name: str) -> Any:
    g = Graph(S, name=name)
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "inc")
    g.add_edge("inc", END)
    return g.compile()


WF = one_step("queues_one_step")


async def _done(rt: Runtime, run_id: str) -> RunStatus:
    return (await rt.wait(run_id, timeout=DEADLINE)).status


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Two store factories over one database: ``same`` shares this process's wake-up hub;
    ``other`` stands for another process (on PostgreSQL a distinct DSN string: only LISTEN/NOTIFY
    carries its wake-ups)."""
    if request.param == "memory":
        mem = MemoryStore()
        yield request.param, (lambda: mem), None
        return
    if request.param == "sqlite":
        from tether.store.sqlite import SqliteStore

        path = tmp_path / "q.db"
        # a file: URI names the same file under another wake-up hub: only the file's data
        # version can tell this process's worker about that store's submits
        yield request.param, (lambda: SqliteStore(path)), (lambda: SqliteStore(f"file:{path}"))
        return
    from tether.store.postgres import PostgresStore

    with pg_schema("tether_queues") as schema:
        other = PG_DSN + ("&" if "?" in PG_DSN else "?") + "application_name=other"
        yield (
            request.param,
            (lambda: PostgresStore(PG_DSN, schema=schema)),
            (lambda: PostgresStore(other, schema=schema)),
        )


async def test_a_submitted_run_starts_without_waiting_for_the_poll(stores: Any) -> None:
    _kind, same, _other = stores
    async with Runtime(same(), workflows=[WF], poll_interval=NEVER) as worker:
        # the first claim sweep runs shortly after open: let it pass (it finds this run)
        first = await worker.submit(WF, {"n": 0})
        assert await _done(worker, first.run_id) is RunStatus.COMPLETED
        async with Runtime(same(), workflows=[WF], recover=False) as client:
            later = await client.submit(WF, {"n": 1})
            assert await _done(worker, later.run_id) is RunStatus.COMPLETED
            # a run resumed for any worker (execute=False) is announced too
            assert (await client.get_run(later.run_id)).status is RunStatus.COMPLETED


async def test_another_process_wakes_a_worker(stores: Any) -> None:
    """PostgreSQL: LISTEN/NOTIFY; SQLite: the worker's store watches the file's data version."""
    kind, same, other = stores
    if other is None:
        pytest.skip(f"{kind}: no other process can share this database")
    store = same()
    async with Runtime(store, workflows=[WF], poll_interval=NEVER) as worker:
        first = await worker.submit(WF, {"n": 0})
        assert await _done(worker, first.run_id) is RunStatus.COMPLETED
        if kind == "postgres":
            await asyncio.wait_for(store.listener.listening.wait(), DEADLINE)
        async with Runtime(other(), workflows=[WF], recover=False) as client:
            later = await client.submit(WF, {"n": 1})
            assert await _done(worker, later.run_id) is RunStatus.COMPLETED


async def test_a_runtime_serves_only_its_queues() -> None:
    store = MemoryStore()
    async with Runtime(store, workflows=[WF], poll_interval=NEVER, queues=["billing"]) as worker:
        billing = await worker.submit(WF, {"n": 0}, queue="billing", priority=5, tenant="acme")
        assert await _done(worker, billing.run_id) is RunStatus.COMPLETED
        other = await worker.submit(WF, {"n": 0}, queue="mail")
        rec = await worker.get_run(billing.run_id)
        assert (rec.queue, rec.priority, rec.tenant) == ("billing", 5, "acme")
        async with Runtime(store, workflows=[WF], poll_interval=NEVER, queues=["mail"]) as mail:
            assert await _done(mail, other.run_id) is RunStatus.COMPLETED
        assert (await worker.get_run(other.run_id)).owner is None  # never claimed by billing


async def test_a_delayed_submit_waits_in_the_queue() -> None:
    async with Runtime(MemoryStore(), workflows=[WF], recover=False) as rt:
        before = rt.clock.now()
        handle = await rt.start(WF, {"n": 0}, delay=NEVER)  # implies execute=False
        rec = await rt.get_run(handle.run_id)
        assert rec.available_at >= before + NEVER
        assert (rec.status, rec.owner) == (RunStatus.PLANNED, None)
        assert await rt.recover_once() == []


async def test_bad_queue_arguments_say_what_to_pass() -> None:
    with pytest.raises(ConfigurationError, match="queues=\\['billing'\\]"):
        Runtime(MemoryStore(), queues="billing")
    with pytest.raises(ConfigurationError, match="serve no queue"):
        Runtime(MemoryStore(), queues=[])
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match="priority"):
            await rt.submit(WF, {"n": 0}, priority=1.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="delay"):
            await rt.submit(WF, {"n": 0}, delay=-1)
        with pytest.raises(InvalidInputError, match="queue"):
            await rt.submit(WF, {"n": 0}, queue="")


@pytest.mark.parametrize("tenant", ["acme ", " acme", "acme\n", "ac\tme", "", "a" * 201])
async def test_a_tenant_name_that_no_key_could_hold_is_refused_everywhere(tenant: str) -> None:
    """Before: ``rt.start(tenant="acme ")`` made a run of a second tenant beside acme, outside
    acme's limits and quotas and invisible to acme's API keys (``tether keys create`` refused
    such a name); a limit set for it limited nothing. One rule now holds at every door."""
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match="tenant"):
            await rt.submit(WF, {"n": 0}, tenant=tenant)
        with pytest.raises(InvalidInputError, match="tenant"):
            await rt.start(WF, {"n": 0}, tenant=tenant)
        with pytest.raises(InvalidInputError, match="tenant"):
            await rt.schedule("0 * * * *", WF, {"n": 0}, name="nightly", tenant=tenant)
        with pytest.raises(InvalidInputError, match="tenant"):
            await rt.store.set_queue_limit("tenant", tenant, max_running=1)  # type: ignore[attr-defined]
        assert await rt.store.list_runs() == []
        if tenant:  # a limit stored before under such a name can still be removed
            await rt.store.set_queue_limit("tenant", tenant)  # type: ignore[attr-defined]


def test_the_near_miss_tenant_error_names_the_tenant_meant() -> None:
    with pytest.raises(InvalidInputError, match="did you mean 'acme'"):
        check_tenant_name("acme ")
    assert check_tenant_name("acme-eu.1") == "acme-eu.1"
    assert check_tenant_name("Acme Corp") == "Acme Corp"  # spaces inside are fine


async def test_a_full_queue_refuses_submits(stores: Any) -> None:
    _kind, same, _other = stores
    store = same()
    async with Runtime(store, workflows=[WF], recover=False) as rt:
        assert isinstance(store, QueueControl)
        await store.set_queue_limit("queue", "small", max_depth=2)
        for n in range(2):
            await rt.submit(WF, {"n": n}, queue="small")
        with pytest.raises(QueueFullError) as caught:
            await rt.submit(WF, {"n": 9}, queue="small")
        assert (caught.value.queue, caught.value.depth, caught.value.limit) == ("small", 2, 2)
        assert "tether queues limit small" in str(caught.value)
        assert len(await rt.list_runs()) == 2  # nothing written
        await rt.submit(WF, {"n": 0}, queue="other")  # other queues are not affected
        (small,) = [s for s in await store.queue_stats() if s.queue == "small"]
        assert (small.waiting, small.running, small.depth) == (2, 0, 2)
        await store.set_queue_limit("queue", "small")  # removed
        await rt.submit(WF, {"n": 3}, queue="small")


async def test_a_submit_sent_again_to_a_full_queue_returns_its_run(stores: Any) -> None:
    """Before, the retry of a submit that had gone through (its answer lost) met the queue full
    with its own run and was told "the run was not submitted" (QueueFullError, HTTP 429)."""
    _kind, same, _other = stores
    store = same()
    async with Runtime(store, workflows=[WF], recover=False) as rt:
        await store.set_queue_limit("queue", "small", max_depth=1)
        first = await rt.submit(WF, {"n": 1}, queue="small", idempotency_key="order-1234")
        again = await rt.submit(WF, {"n": 1}, queue="small", idempotency_key="order-1234")
        assert (again.run_id, again.created) == (first.run_id, False)
        with pytest.raises(IdempotencyConflictError):  # the key with another request
            await rt.submit(WF, {"n": 2}, queue="small", idempotency_key="order-1234")
        with pytest.raises(QueueFullError):  # a new request is still refused
            await rt.submit(WF, {"n": 1}, queue="small", idempotency_key="order-1235")
        turn = {"thread_id": "chat-1", "idempotency_key": "turn-1"}
        await store.set_queue_limit("queue", "chat", max_depth=1)
        said = await rt.submit(WF, {"n": 5}, queue="chat", **turn)
        resent = await rt.submit(WF, {"n": 5}, queue="chat", **turn)
        assert (resent.run_id, resent.created) == (said.run_id, False)
        assert len(await rt.list_runs()) == 2


class Gate:
    """How many runs execute at once, across every runtime of this process."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0


def gated(name: str, gate: Gate) -> Any:
    async def work(s: S) -> dict[str, Any]:
        gate.now += 1
        gate.peak = max(gate.peak, gate.now)
        try:
            for _ in range(20):  # hold the slot across several loop turns and store round trips
                await asyncio.sleep(0.002)
        finally:
            gate.now -= 1
        return {"n": s["n"] + 1}

    g = Graph(S, name=name)
    g.add_node("work", work)
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile()


@pytest.mark.parametrize("limit_kind", ["tenant", "queue", "workflow"])
async def test_shared_limits_are_never_exceeded_by_three_runtimes(
    stores: Any, limit_kind: str
) -> None:
    kind, same, _other = stores
    if kind == "memory" and limit_kind != "tenant":
        pytest.skip("one limit kind is enough for the in-memory store")
    gate = Gate()
    wf = gated(f"queues_gated_{limit_kind}", gate)
    key = {"tenant": "acme", "queue": "limited", "workflow": wf.name}[limit_kind]
    setup = same()
    async with Runtime(setup, workflows=[wf], recover=False) as client:
        assert isinstance(setup, QueueControl)
        await setup.set_queue_limit(limit_kind, key, max_running=2)
        ids = [
            (await client.submit(wf, {"n": i}, tenant="acme", queue="limited")).run_id
            for i in range(24)
        ]
        peaks: list[int] = []

        async def sample() -> None:
            while True:
                stats = await setup.queue_stats()
                peaks.append(sum(s.running for s in stats))
                await asyncio.sleep(0)

        workers = [
            Runtime(same(), workflows=[wf], poll_interval=0.02, max_concurrent_runs=8)
            for _ in range(3)
        ]
        sampler = asyncio.create_task(sample())
        try:
            for w in workers:
                await w.open()
            for run_id in ids:
                assert await _done(client, run_id) is RunStatus.COMPLETED
        finally:
            sampler.cancel()
            for w in workers:
                await w.close()
    assert gate.peak <= 2, f"{gate.peak} runs executed at once under a limit of 2"
    assert peaks and max(peaks) <= 2
    assert gate.peak == 2  # the limit is a cap, not a serialisation


async def test_a_limited_queue_drains_without_polling(stores: Any) -> None:
    """Under a shared limit a claim takes less than the free slots: the end of a run (room in
    the limit) claims the next one at once, not after the poll interval."""
    _kind, same, _other = stores
    store = same()
    async with Runtime(store, workflows=[WF], poll_interval=NEVER) as worker:
        first = await worker.submit(WF, {"n": 0})  # the first sweep: once it ran, only wakes
        assert await _done(worker, first.run_id) is RunStatus.COMPLETED
        assert isinstance(store, QueueControl)
        await store.set_queue_limit("queue", "one", max_running=1)
        handles = [await worker.submit(WF, {"n": i}, queue="one") for i in range(4)]
        for h in handles:
            assert await _done(worker, h.run_id) is RunStatus.COMPLETED


@pytest.mark.parametrize("client_kind", ["same", "other"])
async def test_a_delayed_run_starts_when_due_without_polling(stores: Any, client_kind: str) -> None:
    """The announcement of a delayed run carries its due time: the worker wakes up then."""
    kind, same, other = stores
    client_store = same if client_kind == "same" else other
    if client_store is None:
        pytest.skip(f"{kind}: no other process can share this database")
    store = same()
    async with Runtime(store, workflows=[WF], poll_interval=NEVER) as worker:
        first = await worker.submit(WF, {"n": 0})
        assert await _done(worker, first.run_id) is RunStatus.COMPLETED
        if kind == "postgres":
            await asyncio.wait_for(store.listener.listening.wait(), DEADLINE)
        async with Runtime(client_store(), workflows=[WF], recover=False) as client:
            later = await client.submit(WF, {"n": 1}, delay=0.2)
            assert await _done(worker, later.run_id) is RunStatus.COMPLETED
            rec = await client.get_run(later.run_id)
            assert rec.available_at > 0


class _Counting(MemoryStore):
    """Counts the reads a run loop makes before its first step."""

    def __init__(self) -> None:
        super().__init__()
        self.journal_reads: list[str] = []
        self.chain_reads: list[str] = []
        self.batch_reads: list[list[str]] = []

    async def get_node_writes(self, run_id: str, step: int) -> Any:
        self.journal_reads.append(run_id)
        return await super().get_node_writes(run_id, step)

    async def load_chain(self, run_id: str, step: int) -> Any:
        self.chain_reads.append(run_id)
        return await super().load_chain(run_id, step)

    async def initial_checkpoints(self, run_ids: Any) -> Any:
        self.batch_reads.append(sorted(run_ids))
        return await super().initial_checkpoints(run_ids)


async def test_a_run_claimed_for_the_first_time_skips_the_journal_read() -> None:
    """A claim bumps the lease token: token 1 is a run never leased, so never executed, and its
    journal is empty; a run taken over (token 2) reads it (a step may have half-run)."""
    store = _Counting()
    async with Runtime(store, recover=False) as rt:
        fresh = await rt.submit(WF, {"n": 0})
        again = await rt.submit(WF, {"n": 10})
        lease = await store.acquire_lease(again.run_id, "dead-worker", 0.0)  # expires at once
        assert lease is not None and lease.token == 1
    async with Runtime(store, poll_interval=0.01, workflows=[WF]) as rt:
        assert await _done(rt, fresh.run_id) is RunStatus.COMPLETED
        assert await _done(rt, again.run_id) is RunStatus.COMPLETED
        assert (await rt.get_state(again.run_id)) == {"n": 11}
    assert store.journal_reads == [again.run_id]


async def test_a_claimed_batch_of_new_runs_is_loaded_in_one_read() -> None:
    """Runs claimed together that never executed are loaded with one read of their step-0
    checkpoints, not one read each; a run taken over (token 2) loads its own chain."""
    store = _Counting()
    async with Runtime(store, recover=False) as rt:
        fresh = [(await rt.submit(WF, {"n": i})).run_id for i in range(3)]
        again = await rt.submit(WF, {"n": 10})
        lease = await store.acquire_lease(again.run_id, "dead-worker", 0.0)  # expires at once
        assert lease is not None and lease.token == 1
    async with Runtime(store, recover=False, workflows=[WF]) as rt:
        taken = await rt.recover_once(limit=10)  # loads every run it claims before it returns
        assert sorted(taken) == sorted([*fresh, again.run_id])
        assert store.batch_reads == [sorted(fresh)]
        assert store.chain_reads == [again.run_id]
        for i, run_id in enumerate(fresh):
            assert await _done(rt, run_id) is RunStatus.COMPLETED
            assert await rt.get_state(run_id) == {"n": i + 1}
        assert await _done(rt, again.run_id) is RunStatus.COMPLETED


@pytest.mark.postgres
async def test_a_claimed_batch_enters_its_first_phase_in_one_statement() -> None:
    """On PostgreSQL the queued runs of a claimed batch move PLANNED -> EXECUTING in one
    statement (``commit_batch``): each then commits once (its step and its end), and its
    history reads as if its loop had made the move itself."""
    from tether.store.postgres import PostgresStore

    class Counting(PostgresStore):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.commits: list[str] = []
            self.batches: list[list[str]] = []

        async def commit(self, run_id: str, token: Any, commit: Any) -> Any:
            self.commits.append(run_id)
            return await super().commit(run_id, token, commit)

        async def commit_batch(self, items: Any) -> Any:
            self.batches.append(sorted(i[0] for i in items))
            return await super().commit_batch(items)

    with pg_schema("tether_first_phase") as schema:
        async with Runtime(PostgresStore(PG_DSN, schema=schema), recover=False) as rt:
            ids = [(await rt.submit(WF, {"n": i})).run_id for i in range(3)]
        store = Counting(PG_DSN, schema=schema)
        async with Runtime(store, recover=False, workflows=[WF]) as rt:
            assert sorted(await rt.recover_once(limit=10)) == sorted(ids)
            for i, run_id in enumerate(ids):
                assert await _done(rt, run_id) is RunStatus.COMPLETED
                assert await rt.get_state(run_id) == {"n": i + 1}
            assert store.batches == [sorted(ids)]
            assert sorted(store.commits) == sorted(ids)  # one commit each: step 1 and the end
            for run_id in ids:
                hops = [(t.src, t.dst, t.reason) for t in await store.list_transitions(run_id)]
                assert (RunStatus.PLANNED, RunStatus.EXECUTING, "step 1: inc") in hops
                assert hops[-1][1] is RunStatus.COMPLETED
                assert {t.actor for t in await store.list_transitions(run_id)} >= {
                    f"worker:{rt.owner}"
                }
                events = await store.list_events(run_id)
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
                moves = [e.data for e in events if e.type == "lifecycle"]
                assert {"from": "PLANNED", "to": "EXECUTING", "reason": "step 1: inc"} in moves


@pytest.mark.postgres
async def test_a_fault_before_the_first_phase_batch_strands_no_claimed_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever goes wrong while the batch is prepared, the runs just claimed still run here
    (each loop then makes its own first-phase commit)."""
    from tether.graph import runtime_claims
    from tether.store.postgres import PostgresStore

    def broken(*_a: Any, **_kw: Any) -> Any:
        raise RuntimeError("a bug in the batch")

    with pg_schema("tether_first_phase_fault") as schema:
        async with Runtime(PostgresStore(PG_DSN, schema=schema), recover=False) as rt:
            ids = [(await rt.submit(WF, {"n": i})).run_id for i in range(3)]
        monkeypatch.setattr(runtime_claims, "first_phase_commit", broken)
        async with Runtime(
            PostgresStore(PG_DSN, schema=schema), recover=False, workflows=[WF]
        ) as rt:
            assert sorted(await rt.recover_once(limit=10)) == sorted(ids)
            for i, run_id in enumerate(ids):
                assert await _done(rt, run_id) is RunStatus.COMPLETED
                assert await rt.get_state(run_id) == {"n": i + 1}
    assert "into their first phase failed" in caplog.text


class _FailsOnce(MemoryStore):
    """A store whose first claim after ``arm`` raises (a dropped connection, a full pool)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.failed = asyncio.Event()

    async def claim_runs(self, *args: Any, **kwargs: Any) -> Any:
        if self.armed:
            self.armed = False
            self.failed.set()
            raise RuntimeError("the claim failed this once")
        return await super().claim_runs(*args, **kwargs)


async def test_a_sweep_that_failed_is_tried_again_without_waiting_the_poll_interval() -> None:
    """Before: a sweep that raised slept the whole ``poll_interval`` and ignored wake-ups
    meanwhile, so with a long interval (here an hour) one failed claim left a submitted run
    unclaimed that long."""
    store = _FailsOnce()
    async with Runtime(store, workflows=[WF], poll_interval=NEVER) as worker:
        first = await worker.submit(WF, {"n": 0})
        assert await _done(worker, first.run_id) is RunStatus.COMPLETED
        store.armed = True
        later = await worker.submit(WF, {"n": 1})  # its wake-up's claim fails
        await asyncio.wait_for(store.failed.wait(), DEADLINE)
        assert await _done(worker, later.run_id) is RunStatus.COMPLETED


async def test_queue_names_and_limits_near_misses_are_refused(stores: Any) -> None:
    """'billing ' was another queue (outside billing's limits, and no worker served it), and a
    limit past 2**31 was the driver's error (PostgreSQL) or an OverflowError (SQLite)."""
    _kind, same, _other = stores
    store = same()
    async with Runtime(store, workflows=[WF], recover=False) as rt:
        for name in ("billing ", " billing", "bill\ting"):
            with pytest.raises(InvalidInputError, match="queue name"):
                await rt.submit(WF, {"n": 1}, queue=name)
            with pytest.raises(InvalidInputError, match="queue name"):
                await store.set_queue_limit("queue", name, max_depth=1)
        for big in (2**31, 2**63, 10**20):
            with pytest.raises(InvalidInputError, match="from 0 to 2147483647"):
                await store.set_queue_limit("queue", "billing", max_running=big)
        await store.set_queue_limit("queue", "billing", max_running=2**31 - 1)
        await store.set_queue_limit("queue", "billing ")  # removing is always fine
        assert await rt.list_runs() == []
