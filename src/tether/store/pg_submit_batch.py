"""PostgreSQL ``create_run`` for many concurrent submits at once: one statement for a batch.

Each submit is one statement (``pg_submit``): a round trip, a transaction and a wake-up of a
database backend. Under a burst of submits (an HTTP intake answering many clients) that cost,
paid per run, is what limits the rate on a small machine. ``SubmitBatcher.create_run`` queues
the submit; the submits that queue up while the event loop turns (or while the previous batch
is written) go out together, within ``max_batch`` runs and ``MAX_BATCH_BYTES``, as one
statement (``pg_submit_rows``); a submit alone takes the one-run statement. Every caller is
answered only once the statement committed, and what ``create_run`` promises holds per run: a
run whose id or idempotency key exists already is not written, and its caller gets the
existing run (or its ``IdempotencyConflictError``) as on the one-run path; two submits of one
run id never share a batch. A statement the database refuses for a reason other than a lost
connection (a value it cannot store) is retried run by run on the one-run path, so each error
reaches the submit that caused it. A dropped connection resends the batch in place (nothing
of it applies twice), and a run found there with this very submission's ``created_at`` was
written by the lost send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import psycopg

from tether.core.lifecycle import ACTIVE
from tether.store.pg_submit_rows import Hops, Submit, params, statement
from tether.store.rows import row_to_run
from tether.store.sql_store import existing_run
from tether.store.types import Checkpoint, Event, RunRecord

if TYPE_CHECKING:
    from tether.store.postgres import PostgresStore

MAX_BATCH = 128
"""Runs one statement writes at most..."""
MAX_BATCH_BYTES = 4 << 20
"""...and bytes of input and metadata (a run larger than that goes alone)."""

Created = tuple[RunRecord, bool]
CreateRun = Callable[[RunRecord, Checkpoint, Hops, Sequence[Event]], Awaitable[Created]]


class SubmitBatcher:
    """``create_run`` of ``store`` with concurrent calls written in batches (module doc)."""

    def __init__(
        self, store: PostgresStore, *, single: CreateRun, max_batch: int = MAX_BATCH
    ) -> None:
        self.store = store
        self.single = single
        """The one-run path: a submit alone, and where a batch that fails falls back to."""
        from tether.store.postgres import channel_for_dialect  # postgres imports pg_submit

        self.max_batch = max_batch
        dialect = store._sql.dialect
        self._sql = statement(dialect.prefix, channel_for_dialect(dialect))
        self._queue: list[Submit] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        """Statements written for more than one run..."""
        self.batched = 0
        """...and the runs they carried."""
        self.refused = 0
        """Batches the database refused, then written run by run."""

    async def create_run(
        self,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Hops,
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        done: asyncio.Future[tuple[RunRecord, bool]] = asyncio.get_running_loop().create_future()
        claimable = run.owner is None and run.status in ACTIVE
        now = self.store.clock.now()
        self._queue.append(Submit(run, checkpoint, transitions, events, now, claimable, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await asyncio.shield(done)

    def _take(self) -> list[Submit]:
        """The next batch: oldest first, within the bounds, never two submits of one run id."""
        batch: list[Submit] = []
        ids: set[str] = set()
        rest: list[Submit] = []
        size = 0
        for s in self._queue:
            fits = len(batch) < self.max_batch and (not batch or size + s.size <= MAX_BATCH_BYTES)
            if fits and s.run.run_id not in ids:
                ids.add(s.run.run_id)
                batch.append(s)
                size += s.size
            else:
                rest.append(s)
        self._queue = rest
        return batch

    async def _write_all(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # the submits ready now join this batch
                batch = self._take()
                try:
                    await self._write(batch)
                except Exception as exc:
                    for s in batch:
                        if not s.done.done():
                            s.done.set_exception(exc)
                except BaseException:  # cancelled (the loop shuts down): so are its callers
                    for s in batch + self._queue:
                        s.done.cancel()
                    raise
        finally:
            self._writer = None

    async def _write(self, batch: list[Submit]) -> None:
        if len(batch) == 1:  # nothing to share: the one-run statement
            await _settle(batch[0], self.single)
            return
        args = params(batch)
        pool = self.store._opened()
        retry = None
        resent = False  # an earlier send may have applied
        while True:
            started, sent = time.monotonic(), False
            try:
                async with pool.connection() as conn:
                    sent = True
                    got = await (await conn.execute(self._sql, args, binary=True)).fetchone()
                break
            except psycopg.Error as exc:
                retry = await pool.retry_after(retry, exc)
                if retry is None:
                    if resent:
                        raise
                    # a run of the batch refused (bad data...): each submit on its own path,
                    # so the error goes to the one that caused it
                    self.refused += 1
                    await asyncio.gather(*(_settle(s, self.single) for s in batch))
                    return
                resent = resent or sent
        pool.answered(started)
        self.batches += 1
        self.batched += len(batch)
        inserted = set(got[0] or ()) if got is not None else set()
        await asyncio.gather(*(self._answer(s, s.run.run_id in inserted, resent) for s in batch))

    async def _answer(self, s: Submit, inserted: bool, resent: bool) -> None:
        store = self.store
        try:
            if not inserted and resent:
                found = await store._fetch_one(store._sql.get_run, (s.run.run_id,))
                inserted = found is not None and found[15] == s.now
                inserted = inserted and found[11] == s.run.input_hash
            if inserted:
                if s.claimable:
                    store.wakeups.notify(s.run.queue, s.run.available_at)
                out = (row_to_run(s.row), True)
            else:
                by_key = None
                if s.run.idempotency_key is not None:
                    by_key = await store._fetch_one(
                        store._sql.get_run_by_key, (s.run.idempotency_key,)
                    )
                out = (existing_run(s.run, by_key), False)
        except Exception as exc:
            if not s.done.done():
                s.done.set_exception(exc)
            return
        if not s.done.done():
            s.done.set_result(out)


async def _settle(s: Submit, single: CreateRun) -> None:
    try:
        out = await single(s.run, s.checkpoint, s.transitions, s.events)
    except Exception as exc:
        if not s.done.done():
            s.done.set_exception(exc)
        return
    if not s.done.done():
        s.done.set_result(out)
