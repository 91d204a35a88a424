"""``PostgresStore.commit``: fenced step commits of several runs made in one turn of the event
loop go out as one statement (``pg_commit_group``), each caller answered with its own run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from tests.store.pg_leased import leased_runs
from tether.core.errors import LeaseLostError
from tether.core.lifecycle import RunStatus
from tether.store.postgres import PostgresStore
from tether.store.types import Checkpoint, Commit, Event, RunRecord

pytestmark = pytest.mark.postgres

P, E = RunStatus.PLANNED, RunStatus.EXECUTING
Item = tuple[str, int, Commit]


class Counting(PostgresStore):
    """Counts the batches sent; ``fail``: what the next batch does instead of answering."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.batches: list[list[str]] = []
        self.fail: str | None = None

    async def _send_batch(self, items: Sequence[Item]) -> list[RunRecord]:
        self.batches.append([run_id for run_id, _t, _c in items])
        fail, self.fail = self.fail, None
        if fail == "before":  # the connection dropped before the statement reached the server
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        runs = await super()._send_batch(items)
        if fail == "after":  # it committed, and the reply was lost
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return runs


def _step(run: RunRecord, token: int) -> Commit:
    """A run loop's step commit: its checkpoint, its events numbered, its base."""
    seq, first = run.event_seq + 1, run.status is P
    return Commit(
        checkpoint=Checkpoint(run.run_id, run.step + 1, {"n": seq}, [], None),
        status=E if first else None,
        transitions=[(P, E, "worker:me", "step 1: a")] if first else [],
        events=[Event(run.run_id, seq, "step", 1.0, run.step + 1, "a", {"n": seq})],
        base=run,
    )


async def _store(pg_dsn: str, pg_schema: str) -> Counting:
    store = Counting(pg_dsn, schema=pg_schema)
    await store.setup()
    return store


async def test_commits_of_one_turn_go_out_as_one_statement(pg_dsn: str, pg_schema: str) -> None:
    store = await _store(pg_dsn, pg_schema)
    try:
        leased = await leased_runs(store, 4)
        got = await asyncio.gather(*(store.commit(r.run_id, t, _step(r, t)) for r, t in leased))
        assert store.batches == [["r0", "r1", "r2", "r3"]]
        for (before, token), after in zip(leased, got, strict=True):
            stored = await store.get_run(before.run_id)
            assert after.run_id == before.run_id
            assert (
                (after.status, after.step, after.event_seq, after.lease_token)
                == (
                    stored.status,
                    stored.step,
                    stored.event_seq,
                    stored.lease_token,
                )
                == (E, 1, before.event_seq + 1, token)
            )
            assert (await store.get_checkpoint(before.run_id, 1)).delta == {"n": after.event_seq}
            assert [e.seq for e in await store.list_events(before.run_id)][-1] == after.event_seq
        # a commit alone in its turn goes by itself, as before
        run, token = got[0], leased[0][1]
        alone = await store.commit(run.run_id, token, _step(run, token))
        assert alone.step == 2 and len(store.batches) == 1
    finally:
        await store.close()


async def test_a_refused_batch_answers_each_commit_as_it_would_alone(
    pg_dsn: str, pg_schema: str
) -> None:
    """r1's lease moved on: the batch is refused whole, then each commit goes by itself: r1's
    caller gets its LeaseLostError, the others their committed runs."""
    store = await _store(pg_dsn, pg_schema)
    try:
        leased = await leased_runs(store, 3)
        await store.release_lease("r1", leased[1][1])
        assert await store.acquire_lease("r1", "someone-else", 30.0) is not None
        got = await asyncio.gather(
            *(store.commit(r.run_id, t, _step(r, t)) for r, t in leased), return_exceptions=True
        )
        assert store.batches == [["r0", "r1", "r2"]]
        assert isinstance(got[1], LeaseLostError)
        for i in (0, 2):
            run = got[i]
            assert isinstance(run, RunRecord) and run.status is E and run.step == 1
            assert (await store.get_run(run.run_id)).event_seq == leased[i][0].event_seq + 1
        assert (await store.get_run("r1")).status is P  # untouched by the stale writer
    finally:
        await store.close()


@pytest.mark.parametrize("lost", ["before", "after"])
async def test_a_batch_whose_reply_was_lost_applies_once(
    pg_dsn: str, pg_schema: str, lost: str
) -> None:
    """The connection dropped around the batch: each run is read back; a batch that committed
    is not sent again (each commit applied once), one that never arrived is sent run by run."""
    store = await _store(pg_dsn, pg_schema)
    try:
        leased = await leased_runs(store, 3)
        store.fail = lost
        got = await asyncio.gather(*(store.commit(r.run_id, t, _step(r, t)) for r, t in leased))
        assert store.batches == [["r0", "r1", "r2"]]  # no second batch: alone, or not again
        for (before, _token), after in zip(leased, got, strict=True):
            assert after.status is E and after.step == 1
            assert after.event_seq == before.event_seq + 1
            events = await store.list_events(before.run_id)
            assert [e.seq for e in events] == list(range(1, after.event_seq + 1))
            hops = await store.list_transitions(before.run_id)
            assert [(h.src, h.dst) for h in hops].count((P, E)) == 1
    finally:
        await store.close()


async def test_a_caller_cancelled_before_the_batch_leaves_is_not_sent(
    pg_dsn: str, pg_schema: str
) -> None:
    store = await _store(pg_dsn, pg_schema)
    try:
        leased = await leased_runs(store, 3)
        tasks = [asyncio.create_task(store.commit(r.run_id, t, _step(r, t))) for r, t in leased]
        await asyncio.sleep(0)  # each has joined the turn's group
        tasks[1].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[1], asyncio.CancelledError)
        assert store.batches == [["r0", "r2"]]
        assert (await store.get_run("r1")).status is P
    finally:
        await store.close()
