"""``PostgresStore.commit_batch``: several runs' fenced commits in one statement, all or none."""

from __future__ import annotations

import psycopg
import pytest

from tests.store.pg_leased import leased_runs
from tether.core.lifecycle import RunStatus
from tether.graph.events import lifecycle_events
from tether.store import pg_commit
from tether.store.postgres import PostgresStore
from tether.store.protocol import CommitBatcher
from tether.store.types import Checkpoint, Commit, RunRecord

pytestmark = pytest.mark.postgres

P, E = RunStatus.PLANNED, RunStatus.EXECUTING


def _move(run: RunRecord, token: int, now: float) -> tuple[str, int, Commit]:
    hops = [(P, E, "worker:me", "step 1: a")]
    commit = Commit(status=E, transitions=hops, events=lifecycle_events(run.run_id, now, hops))
    commit.base = run
    return run.run_id, token, commit


async def test_a_batch_commits_each_run_as_commit_would(pg_dsn: str, pg_schema: str) -> None:
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    try:
        assert isinstance(store, CommitBatcher)
        leased = await leased_runs(store, 3)
        now = store.clock.now()
        got = await store.commit_batch([_move(run, token, now) for run, token in leased])
        assert [r.run_id for r in got] == ["r0", "r1", "r2"]  # the items' order
        for (before, token), after in zip(leased, got, strict=True):
            stored = await store.get_run(before.run_id)
            assert after.status is stored.status is E
            assert after.event_seq == stored.event_seq == before.event_seq + 1
            assert after.lease_token == stored.lease_token == token  # still held
            assert after.input == stored.input  # the large fields from the base
            events = await store.list_events(before.run_id)
            assert events[-1].seq == stored.event_seq and events[-1].data["to"] == "EXECUTING"
            hops = await store.list_transitions(before.run_id)
            assert (hops[-1].src, hops[-1].dst, hops[-1].actor) == (P, E, "worker:me")
        assert await store.commit_batch([]) == []
    finally:
        await store.close()


async def test_one_refused_commit_leaves_the_whole_batch_unapplied(
    pg_dsn: str, pg_schema: str
) -> None:
    """A lost fence (another worker took r1) fails the statement: none of the runs moved, so
    each can be committed by itself afterwards."""
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    try:
        leased = await leased_runs(store, 3)
        await store.release_lease("r1", leased[1][1])
        assert await store.acquire_lease("r1", "someone-else", 30.0) is not None
        now = store.clock.now()
        with pytest.raises(psycopg.Error) as refused:
            await store.commit_batch([_move(run, token, now) for run, token in leased])
        assert refused.value.sqlstate == pg_commit.LEASE_LOST  # r1's fence
        for run, _token in leased:
            stored = await store.get_run(run.run_id)
            assert stored.status is P and stored.event_seq == run.event_seq
        run, token = leased[0]
        assert (await store.commit(*_move(run, token, now))).status is E
    finally:
        await store.close()


async def test_a_batch_refuses_commits_it_cannot_take(pg_dsn: str, pg_schema: str) -> None:
    """Without its base, or merging metadata, a commit goes through ``commit`` only."""
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    try:
        ((run, token),) = await leased_runs(store, 1)
        item = _move(run, token, store.clock.now())
        item[2].metadata = {"x": 1}
        with pytest.raises(ValueError, match="without metadata"):
            await store.commit_batch([item])
        item[2].metadata, item[2].base = None, None
        with pytest.raises(ValueError, match="carrying their base"):
            await store.commit_batch([item])
        assert (await store.get_run(run.run_id)).status is P
    finally:
        await store.close()


async def test_a_batch_never_waits_for_a_row_lock(pg_dsn: str, pg_schema: str) -> None:
    """A row of the batch locked elsewhere (the lease heartbeat renewing it, say) fails the
    batch at once instead of waiting: two statements waiting on each other's rows deadlock."""
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    try:
        leased = await leased_runs(store, 3)
        now = store.clock.now()
        with psycopg.connect(pg_dsn) as holder:  # a transaction holding r2's row
            holder.execute(
                f'SELECT 1 FROM "{pg_schema}".tether_runs WHERE run_id = %s FOR UPDATE', ("r2",)
            )
            with pytest.raises(psycopg.errors.LockNotAvailable):
                await store.commit_batch([_move(run, token, now) for run, token in leased])
            holder.rollback()
        for run, _token in leased:
            assert (await store.get_run(run.run_id)).status is P  # nothing applied
        got = await store.commit_batch([_move(run, token, now) for run, token in leased])
        assert [r.status for r in got] == [E, E, E]  # the lock gone, the same batch goes
    finally:
        await store.close()


_ODD = 'q"uo\\te {br,ace} NULL \u00e9\u4e2d \U0001f600'
"""Text that array literals must escape: quotes, backslashes, braces, commas, the word NULL."""


def _rich(run: RunRecord, token: int, now: float, i: int) -> Commit:
    """A commit using every parameter a batched commit can carry, with awkward values."""
    hops = [(P, E, f"worker:{_ODD}", f"step 1: {_ODD}")]
    events = lifecycle_events(run.run_id, now, hops)
    events[0].data = {"odd": _ODD, "bytes-like": "\\x00", "n": i, "f": 0.1 + i}
    cp = Checkpoint(
        run.run_id, 1, {"v": _ODD, "i": i}, [{"node": "a", "id": _ODD}], {"s": [1.5, None]}
    )
    commit = Commit(
        checkpoint=cp,
        status=E,
        transitions=hops,
        events=events,
        result={"r": _ODD} if i % 2 else None,
        set_result=bool(i % 2),
        error={"e": _ODD} if i == 1 else None,
        set_error=i == 1,
        escalation={"why": _ODD} if i == 2 else None,
        set_escalation=i == 2,
        clear_node_writes_for_step=0 if i == 0 else None,
        release_lease=i == 2,
        available_at=now + 12.345678901 if i == 2 else None,
    )
    commit.base = run
    return commit


def _stored(run: RunRecord) -> tuple[object, ...]:
    return (
        run.status, run.step, run.result, run.error, run.escalation, run.owner,
        run.lease_token, run.event_seq, run.available_at, run.updated_at,
    )  # fmt: skip


async def test_a_batch_writes_every_value_as_commit_would(pg_dsn: str, pg_schema: str) -> None:
    """Each parameter travels as an array of the batch's values (array-valued ones as arrays
    of literals): checkpoints, results, errors, releases, delays and awkward text come out
    exactly as the same commits made one by one."""
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    try:
        leased = await leased_runs(store, 6)
        now = store.clock.now()
        store.clock.now = lambda: now  # type: ignore[method-assign]  # one time for both
        batched = [(r.run_id, t, _rich(r, t, now, i)) for i, (r, t) in enumerate(leased[:3])]
        got = await store.commit_batch(batched)
        single = [
            await store.commit(r.run_id, t, _rich(r, t, now, i))
            for i, (r, t) in enumerate(leased[3:])
        ]
        for b, s in zip(got, single, strict=True):
            sb, ss = await store.get_run(b.run_id), await store.get_run(s.run_id)
            assert _stored(b) == _stored(sb) == _stored(ss) == _stored(s)
            assert (b.lease_expires_at, s.lease_expires_at) == (
                sb.lease_expires_at,
                ss.lease_expires_at,
            )
            assert (b.status, b.owner is None) == (E, b.run_id == "r2")
            cb, cs = (
                await store.get_checkpoint(b.run_id, 1),
                await store.get_checkpoint(s.run_id, 1),
            )
            assert cb.delta["v"] == _ODD and cb.snapshot == {"s": [1.5, None]}
            assert (cb.delta, cb.next_tasks, cb.snapshot, cb.barriers, cb.meta, cb.created_at) == (
                cs.delta, cs.next_tasks, cs.snapshot, cs.barriers, cs.meta, cs.created_at,
            )  # fmt: skip
            eb, es = await store.list_events(b.run_id), await store.list_events(s.run_id)
            assert [(e.seq, e.type, e.ts, e.step, e.node, e.data) for e in eb] == [
                (e.seq, e.type, e.ts, e.step, e.node, e.data) for e in es
            ]
            assert eb[-1].data["odd"] == _ODD
            tb, ts = await store.list_transitions(b.run_id), await store.list_transitions(s.run_id)
            assert [(t.src, t.dst, t.actor, t.reason) for t in tb] == [
                (t.src, t.dst, t.actor, t.reason) for t in ts
            ]
            assert tb[-1].actor == f"worker:{_ODD}"
    finally:
        await store.close()
