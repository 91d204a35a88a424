"""The RunStore operations every SQL backend shares, written once against a tiny driver interface.

A backend supplies single-statement access (``_fetch``, ``_fetch_one``, ``_execute``), a
``_transaction()`` yielding a ``Tx``, its ``commit`` (the hot path, tuned per database) and the
dialect hooks ``_open``/``_lock_schema``. Everything else (reads, leases, claims, journals,
migrations, create/delete/purge/prune) lives here, so the backends cannot drift apart.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NoReturn, Protocol

from tether.core.clock import Clock
from tether.core.errors import (
    IdempotencyConflictError,
    LeaseLostError,
    RunNotFoundError,
    StepNotFoundError,
)
from tether.core.lifecycle import ACTIVE, RunStatus
from tether.core.serde import dumps, loads
from tether.store import purge
from tether.store.lease_takeovers import SqlLeaseTakeovers
from tether.store.memory import check_same_submission
from tether.store.paging import check_page, whole, whole_number
from tether.store.rows import (
    checkpoint_params,
    enc,
    event_params,
    node_write_params,
    row_to_checkpoint,
    row_to_effect,
    row_to_event,
    row_to_node_write,
    row_to_run,
    row_to_transition,
    run_params,
)
from tether.store.schema import current_version, pending, record_version, version_table
from tether.store.sql_api_keys import SqlApiKeys
from tether.store.sql_approvals import SqlApprovals
from tether.store.sql_audit import SqlAudit
from tether.store.sql_base import ACTIVE_VALUES, FINISHED_VALUES, Statements
from tether.store.sql_budget import SqlBudget
from tether.store.sql_evaluation_log import SqlEvaluationLog
from tether.store.sql_pii_vault import SqlPiiVault
from tether.store.sql_queue_limits import SqlQueueLimits
from tether.store.sql_run_counts import SqlRunCounts
from tether.store.sql_run_usage import SqlRunUsage
from tether.store.sql_timers import SqlTimers
from tether.store.sql_workers import SqlWorkers
from tether.store.types import (
    Checkpoint,
    EffectRecord,
    Event,
    Lease,
    NodeWrite,
    RunRecord,
    Transition,
)
from tether.store.usage import (
    ModelCallTotals,
    model_usage_sql,
    row_to_totals,
    step_model_calls_sql,
)
from tether.store.wakeup import Listener, Wakeup, payload

_NO_UPPER_STEP = 2**62
RENEW_BATCH = 256
"""Leases renewed per statement (two parameters each)."""


def padded(items: Sequence[Any]) -> tuple[Any, ...]:
    """``items`` repeated up to a power of two: few distinct statement texts to prepare and
    cache, and a repeated value changes nothing in ``IN (...)``."""
    if not items:
        return ()
    size = 1 << (len(items) - 1).bit_length()
    return (*items, *([items[0]] * (size - len(items))))


def renew_batches(
    sql: Statements, owner: str, leases: Mapping[str, int], expires: float
) -> list[tuple[str, tuple[Any, ...]]]:
    """The ``renew_leases`` statements for ``leases``: one per ``RENEW_BATCH`` leases."""
    pairs = sorted(leases.items())
    out = []
    for i in range(0, len(pairs), RENEW_BATCH):
        chunk = padded(pairs[i : i + RENEW_BATCH])
        flat = [v for pair in chunk for v in pair]
        out.append((sql.renew_leases(len(chunk)), (expires, owner, *flat)))
    return out


def lease_unowned_sql(sql: Statements, event_seq: bool) -> str:
    """Lease an unowned run whose token (and, ``event_seq``, event sequence) is still the one
    read (``LeaseCommit``): owner, expiry, run id, token[, event_seq]; returns the new token
    (no row: owned, or written since)."""
    return (
        f"UPDATE {sql.dialect.prefix}runs SET lease_token = lease_token + 1, owner = ?, "
        "lease_expires_at = ? WHERE run_id = ? AND lease_token = ? AND owner IS NULL"
        + (" AND event_seq = ?" if event_seq else "")
        + " RETURNING lease_token"
    )


def _claimable(run: RunRecord) -> bool:
    return run.owner is None and run.status in ACTIVE


class Tx(Protocol):
    """One open transaction of a backend."""

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[Any]: ...

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int: ...

    async def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...


def existing_run(run: RunRecord, row: Any) -> RunRecord:
    """The run a refused ``create_run`` of ``run`` found in its place: ``row`` is the run read
    by ``run``'s idempotency key (None: no key, or no run under it). Raises when it is not the
    same submission (a run id taken, a key reused for another workflow, tenant or input)."""
    if row is None:
        raise IdempotencyConflictError(f"run id {run.run_id!r} already exists")
    existing = row_to_run(row)
    check_same_submission(run, existing)
    return existing


class SqlStore(
    SqlWorkers,
    SqlTimers,
    SqlQueueLimits,
    SqlAudit,
    SqlApprovals,
    SqlBudget,
    SqlPiiVault,
    SqlApiKeys,
    SqlRunCounts,
    SqlRunUsage,
    SqlLeaseTakeovers,
    SqlEvaluationLog,
    ABC,
):
    clock: Clock
    _sql: Statements
    wakeups: Wakeup
    """This database's wake-up hub in this process (``store.wakeup``)."""

    # -- what a backend provides ------------------------------------------------------------
    @abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    @abstractmethod
    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Any: ...

    @abstractmethod
    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one write statement; returns the rows it changed."""

    async def _fetch_write(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """``_fetch`` for one write statement (``RETURNING`` rows)."""
        return await self._fetch(sql, params)

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    @abstractmethod
    async def _open(self) -> None:
        """Connect (before migrations); a no-op when already connected."""

    @abstractmethod
    async def _lock_schema(self, tx: Tx) -> None:
        """Serialise concurrent ``setup()`` calls beyond what the transaction already does."""

    @abstractmethod
    async def take_tokens(self, bucket: str, rate: float, burst: float, n: float = 1.0) -> float:
        """``ControlStore.take_tokens``: atomic across workers, so each backend locks its way."""

    def _where(self) -> str:
        return "this database"

    # -- lifecycle of the store -------------------------------------------------------------
    async def setup(self) -> None:
        await self._open()
        d = self._sql.dialect
        async with self._transaction() as tx:
            await self._lock_schema(tx)
            await tx.execute(version_table(d))
            ((cur,),) = await tx.fetch(current_version(d))
            for version, statements in pending(d, cur, self._where()):
                for statement in statements:
                    await tx.execute(statement)
                await tx.execute(record_version(d), (version, self.clock.now()))

    async def schema_version(self) -> int:
        """The schema version the database is at (0: no tether tables yet), read without
        migrating (``tether migrate --dry-run``)."""
        await self._open()
        d = self._sql.dialect
        exists, params = d.table_exists("schema_version")
        row = await self._fetch_one(d.sql(exists), params)
        if not row or not row[0]:
            return 0
        (version,) = await self._fetch_one(current_version(d), ())
        return int(version)

    def pending_migrations(self, current: int) -> list[int]:
        """The schema versions ``setup()`` would apply to a database at ``current`` (raises
        ``SchemaVersionError`` for a database newer than this tether)."""
        return [version for version, _ in pending(self._sql.dialect, current, self._where())]

    # -- runs -------------------------------------------------------------------------------
    async def create_run(
        self,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        async with self._transaction() as tx:
            made = await self._insert_new_run(tx, run, checkpoint, transitions, events)
        self._run_created(made)
        return made

    async def _insert_new_run(
        self,
        tx: Tx,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
        events: Sequence[Event],
    ) -> tuple[RunRecord, bool]:
        """``create_run``'s writes, in the open transaction ``tx``: the run as stored and True,
        or the run found in its place and False (raises when that one is another submission).
        A refused run writes nothing."""
        sql, now = self._sql, self.clock.now()
        rid, seq0 = run.run_id, run.event_seq
        p = run_params(run)
        params = (*p[:15], now, now, seq0 + len(events), *p[18:])
        trs = [
            (rid, i, src.value if src is not None else None, dst.value, now, actor, why)
            for i, (src, dst, actor, why) in enumerate(transitions, 1)
        ]
        evs = [event_params(rid, seq0 + i, e, now) for i, e in enumerate(events, 1)]
        apart = sql.dialect.inputs_apart and params[3] is not None
        stored = (*params[:3], None, *params[4:]) if apart else params  # input: run_inputs
        if not await tx.fetch(sql.insert_run, stored):
            row = None
            if run.idempotency_key is not None:
                rows = await tx.fetch(sql.get_run_by_key, (run.idempotency_key,))
                row = rows[0] if rows else None
            return existing_run(run, row), False
        if apart:
            await tx.execute(sql.insert_input, (rid, params[3]))
        await tx.execute(sql.upsert_checkpoint, checkpoint_params(rid, checkpoint, now))
        if trs:
            await tx.executemany(sql.insert_transition, trs)
        if evs:
            await tx.executemany(sql.insert_event, evs)
        made = row_to_run(params)
        if _claimable(made) and sql.dialect.channel is not None:  # other processes: NOTIFY
            wake = payload(made.queue, made.available_at)
            await tx.execute(sql.notify, (sql.dialect.channel, wake))
        return made, True

    def _run_created(self, made: tuple[RunRecord, bool]) -> None:
        """After ``_insert_new_run``'s transaction committed: a new run nobody holds is
        claimable, so the runtimes of this process hear of it."""
        run, created = made
        if created and _claimable(run):
            self.wakeups.notify(run.queue, run.available_at)

    async def get_run(self, run_id: str) -> RunRecord:
        row = await self._fetch_one(self._sql.get_run, (run_id,))
        if row is None:
            raise RunNotFoundError(run_id)
        return row_to_run(row)

    async def get_run_by_key(self, idempotency_key: str) -> RunRecord | None:
        row = await self._fetch_one(self._sql.get_run_by_key, (idempotency_key,))
        return None if row is None else row_to_run(row)

    async def list_runs(
        self,
        *,
        status: Sequence[RunStatus] | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        before: str | None = None,
        after: str | None = None,
        thread_id: str | None = None,
        tenant: str | None = None,
    ) -> list[RunRecord]:
        offset, limit = check_page(before, after, offset, limit)
        cursor_id = before if before is not None else after
        cursor = None if cursor_id is None else "before" if before is not None else "after"
        common: list[Any] = []
        if workflow is not None:
            common.append(workflow)
        if parent_run_id is not None:
            common.append(parent_run_id)
        if thread_id is not None:
            common.append(thread_id)
        if tenant is not None:
            common.append(tenant)
        if cursor_id is not None:
            row = await self._fetch_one(self._sql.run_created, (cursor_id,))
            if row is None or (tenant is not None and row[1] != tenant):  # not its to know
                raise RunNotFoundError(cursor_id)
            common += (row[0], cursor_id)
        if limit <= 0 or (status is not None and not status):
            return []
        offset = max(offset, 0) if cursor is None else 0
        values = list(dict.fromkeys(RunStatus(s).value for s in status or ()))
        if status is None:
            params = common
        elif len(values) == 1:
            params = [values[0], *common]
        else:  # one branch per status, each with its own limit (see Statements.list_runs)
            params = [v for s in values for v in (s, *common, limit + offset)]
        params.append(limit)
        if cursor is None:
            params.append(offset)
        n_status = len(values) if status is not None else None
        sql = self._sql.list_runs(
            n_status,
            workflow is not None,
            parent_run_id is not None,
            cursor,
            thread_id is not None,
            tenant is not None,
        )
        runs = [row_to_run(r) for r in await self._fetch(sql, params)]
        if cursor == "after":
            runs.reverse()  # fetched oldest first: the runs just newer than the cursor
        return runs

    async def delete_run(self, run_id: str) -> None:
        async with self._transaction() as tx:
            await tx.execute(self._sql.delete_run, (run_id,))
            for statement in self._sql.delete_children:
                await tx.execute(statement, (run_id,))

    async def purge_runs(
        self, finished_before: float, *, batch: int = purge.PURGE_BATCH, dry_run: bool = False
    ) -> int:
        """Whole families only, a page of roots per transaction (see ``store.purge``)."""
        if batch < 1:
            raise ValueError("purge batch must be >= 1")
        sql = self._sql
        d = sql.dialect
        total = 0
        for status in FINISHED_VALUES:
            cursor: tuple[float, str] | None = (float("-inf"), "")
            while cursor is not None:
                async with self._transaction() as tx:

                    async def read(
                        key: tuple[object, ...], build: Callable[[], str], params: Sequence[Any]
                    ) -> list[Any]:
                        return await tx.fetch(sql.memoized(key, build), params)

                    doomed, cursor = await purge.read_page(
                        read, (d.prefix, d.row_lock), status, finished_before, cursor, batch
                    )
                    if doomed and not dry_run:
                        ids = [(run_id,) for run_id in doomed]
                        await tx.executemany(sql.delete_run, ids)
                        for statement in sql.delete_children:
                            await tx.executemany(statement, ids)
                total += len(doomed)
                if cursor is not None:
                    await self._between_purge_pages()
        return total

    async def _between_purge_pages(self) -> None:
        """Let other work of this process in between two pages of a purge (SQLite runs store
        calls on the event loop's thread)."""
        await asyncio.sleep(0)

    async def _check_fence(self, run_id: str, token: int | None) -> None:
        """After a fenced statement changed nothing: raise why, or return if the fence holds."""
        row = await self._fetch_one(self._sql.run_token, (run_id,))
        if row is None:
            raise RunNotFoundError(run_id)
        if token is not None and row[0] != token:
            raise LeaseLostError(run_id, token)

    async def _fence_failed(self, run_id: str, token: int | None) -> NoReturn:
        await self._check_fence(run_id, token)
        raise LeaseLostError(run_id, token)

    # -- leases -----------------------------------------------------------------------------
    async def _before_leasing(self) -> None:
        """Called before a lease is acquired or claimed (a dialect hook: PostgreSQL measures
        its server's clock again when due, see ``store.server_clock``)."""
        return None

    async def acquire_lease(self, run_id: str, owner: str, ttl: float) -> Lease | None:
        await self._before_leasing()
        now = self.clock.now()
        params = (owner, now, owner, now + ttl, run_id, now, owner)
        rows = await self._fetch_write(self._sql.acquire_lease, params)
        if rows:
            return Lease(run_id, owner, rows[0][0], rows[0][1])
        await self._check_fence(run_id, None)
        return None

    async def renew_lease(self, run_id: str, owner: str, token: int, ttl: float) -> Lease:
        rows = await self._fetch(
            self._sql.renew_lease, (self.clock.now() + ttl, run_id, token, owner)
        )
        if not rows:
            await self._fence_failed(run_id, token)
        return Lease(run_id, owner, token, rows[0][0])

    async def release_lease(self, run_id: str, token: int) -> None:
        for queue, available_at, status in await self._fetch(
            self._sql.release_lease, (run_id, token)
        ):
            if status in ACTIVE_VALUES:  # claimable again: wake the runtimes here
                self.wakeups.notify(queue, available_at)

    def subscribe_wakeups(self, listener: Listener) -> Callable[[], None]:
        """``WakeSource``: hear of runs that became claimable (see ``store.wakeup``)."""
        return self.wakeups.subscribe(listener)

    async def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        renewed: set[str] = set()
        for sql, params in renew_batches(self._sql, owner, leases, self.clock.now() + ttl):
            renewed.update(r[0] for r in await self._fetch(sql, params))
        return set(leases) - renewed

    async def claim_runs(
        self,
        owner: str,
        ttl: float,
        *,
        workflows: Sequence[str] | None = None,
        limit: int = 10,
        exclude: Collection[str] = (),
        dead_owners: Collection[str] = (),
        queues: Sequence[str] | None = None,
    ) -> list[Lease]:
        if limit <= 0 or (workflows is not None and not workflows):
            return []
        if queues is not None and not queues:
            return []
        await self._before_leasing()
        now = self.clock.now()
        wfs = tuple(workflows) if workflows is not None else ()
        qs = padded(sorted(set(queues))) if queues is not None else ()
        skip = padded(sorted(set(exclude)))
        dead = padded(sorted(set(dead_owners)))
        served = (now, *wfs, *qs, *skip, limit)  # available now, asked for, not excluded
        params = (now, *dead, *served, *served, limit, owner, now + ttl)
        n_wfs = len(wfs) if workflows is not None else None
        n_qs = len(qs) if queues is not None else None
        if await self._limited():  # shared limits: count what runs, serialised with other claims
            found = await self._claim_limited(
                now,
                dead,
                wfs if workflows is not None else None,
                qs if queues is not None else None,
                skip,
                limit,
                owner,
                now + ttl,
            )
        else:
            sql = self._sql.claim_runs(n_wfs, len(skip), len(dead), n_qs)
            found = await self._fetch(sql, params)
        # in claim order: orphans (taken from an owner), released runs (a token above 1 now),
        # never-started ones (token 1); each by priority, then age
        rows = sorted(found, key=lambda r: (r[5] is None, r[1] == 1, -r[3], r[4], r[0]))
        return [
            Lease(
                r[0],
                owner,
                r[1],
                r[2],
                row_to_run(r[6:]) if len(r) > 6 else None,
                previous_owner=r[5],
            )
            for r in rows
        ]

    async def lease_owners(self) -> list[str]:
        rows = await self._fetch(self._sql.lease_owners, (*ACTIVE_VALUES, self.clock.now()))
        return sorted(r[0] for r in rows)

    # -- checkpoints ------------------------------------------------------------------------
    async def get_checkpoint(self, run_id: str, step: int) -> Checkpoint:
        row = await self._fetch_one(self._sql.get_checkpoint, (step, run_id))
        if row is None:
            raise RunNotFoundError(run_id)
        if row[0] is None:
            raise StepNotFoundError(run_id, step)
        return row_to_checkpoint(row)

    async def latest_checkpoint(self, run_id: str) -> Checkpoint:
        row = await self._fetch_one(self._sql.latest_checkpoint, (run_id, run_id))
        if row is None:
            raise RunNotFoundError(run_id)
        if row[0] is None:
            raise StepNotFoundError(run_id, 0)
        return row_to_checkpoint(row)

    async def list_checkpoints(
        self,
        run_id: str,
        *,
        from_step: int = 0,
        to_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]:
        from_step = whole("from_step", from_step)
        upper = _NO_UPPER_STEP if to_step is None else whole("to_step", to_step)
        count = _NO_UPPER_STEP if limit is None else max(whole("limit", limit), 0)
        rows = await self._fetch(self._sql.list_checkpoints, (run_id, from_step, upper, count))
        if not rows:
            await self._check_fence(run_id, None)
        return [row_to_checkpoint(r) for r in rows]

    async def load_chain(self, run_id: str, step: int) -> list[Checkpoint]:
        if whole_number("step", step) != whole("step", step):  # no store holds such a step
            await self._check_fence(run_id, None)
            raise StepNotFoundError(run_id, step)
        rows = await self._fetch(self._sql.load_chain, (run_id, step, run_id, step))
        if not rows or rows[-1][1] != step:
            await self._check_fence(run_id, None)
            raise StepNotFoundError(run_id, step)
        return [row_to_checkpoint(r) for r in rows]

    async def initial_checkpoints(self, run_ids: Sequence[str]) -> dict[str, Checkpoint]:
        if not run_ids:
            return {}
        ids = padded(sorted(set(run_ids)))
        rows = await self._fetch(self._sql.initial_checkpoints(len(ids)), ids)
        return {r[0]: row_to_checkpoint(r) for r in rows}

    async def prune_checkpoints(self, run_id: str, keep_last: int, base: Checkpoint) -> int:
        sql = self._sql
        async with self._transaction() as tx:
            if not await tx.fetch(sql.run_token, (run_id,)):
                raise RunNotFoundError(run_id)
            row = checkpoint_params(run_id, base, base.created_at)
            await tx.execute(sql.upsert_checkpoint, row)
            return await tx.execute(sql.prune_checkpoints, (run_id, base.step))

    # -- node writes ------------------------------------------------------------------------
    async def put_node_write(self, token: int | None, write: NodeWrite) -> None:
        params = (*node_write_params(write, self.clock.now()), write.run_id, token, token)
        if not await self._execute(self._sql.put_node_write, params):
            await self._fence_failed(write.run_id, token)

    async def get_node_writes(self, run_id: str, step: int) -> list[NodeWrite]:
        rows = await self._fetch(self._sql.get_node_writes, (run_id, step))
        return [row_to_node_write(r) for r in rows]

    # -- effects ----------------------------------------------------------------------------
    async def record_intent(
        self, run_id: str, key: str, kind: str, request: Any, token: int | None = None
    ) -> tuple[EffectRecord, bool]:
        now = self.clock.now()
        params = (run_id, key, kind, enc(request), now, now, run_id, token, token)
        rows = await self._fetch(self._sql.record_intent, params)
        if rows:  # inserted (attempts == 1) or a pending intent re-recorded (attempts > 1)
            rec = row_to_effect(rows[0])
            return rec, rec.attempts == 1
        await self._check_fence(run_id, token)
        done = await self.get_effect(run_id, key)
        if done is None:  # effects disappear only with their run
            raise RunNotFoundError(run_id)
        return done, False

    async def record_result(
        self,
        run_id: str,
        key: str,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        token: int | None = None,
    ) -> EffectRecord:
        status = "failed" if error is not None else "done"
        now = self.clock.now()
        params = (status, enc(result), enc(error), now, run_id, key, run_id, token, token)
        rows = await self._fetch(self._sql.record_result, params)
        if not rows:
            await self._check_fence(run_id, token)
            raise KeyError(f"no intent recorded for effect {key!r} of run {run_id}")
        return row_to_effect(rows[0])

    async def get_effect(self, run_id: str, key: str) -> EffectRecord | None:
        row = await self._fetch_one(self._sql.get_effect, (run_id, key))
        return row_to_effect(row) if row is not None else None

    async def list_effects(self, run_id: str) -> list[EffectRecord]:
        return [row_to_effect(r) for r in await self._fetch(self._sql.list_effects, (run_id,))]

    # -- events and transitions -------------------------------------------------------------
    async def list_events(
        self, run_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[Event]:
        after_seq, limit = whole("after_seq", after_seq), whole("limit", limit)
        rows = await self._fetch(self._sql.list_events, (run_id, after_seq, max(limit, 0)))
        if not rows:
            await self._check_fence(run_id, None)
        return [row_to_event(r) for r in rows]

    async def model_usage(self, run_id: str) -> list[ModelCallTotals]:
        d = self._sql.dialect
        sql = self._sql.memoized(("usage",), lambda: model_usage_sql(d.name, d.prefix))
        rows = await self._fetch(sql, (run_id,))
        if not rows:
            await self._check_fence(run_id, None)
        return sorted((row_to_totals(r) for r in rows), key=lambda t: t.model)

    async def step_model_calls(self, run_id: str, step: int) -> list[Event]:
        d = self._sql.dialect
        sql = self._sql.memoized(("step_calls",), lambda: step_model_calls_sql(d.name, d.prefix))
        return [row_to_event(r) for r in await self._fetch(sql, (run_id, whole("step", step)))]

    async def list_transitions(self, run_id: str) -> list[Transition]:
        rows = await self._fetch(self._sql.list_transitions, (run_id,))
        if not rows:
            await self._check_fence(run_id, None)
        return [row_to_transition(r) for r in rows]

    # -- control plane (tether.store.control) -------------------------------------------------
    async def set_flag(self, key: str, value: Any) -> None:
        if value is None:
            await self._execute(self._sql.delete_flag, (key,))
        else:
            await self._execute(self._sql.set_flag, (key, dumps(value), self.clock.now()))

    async def get_flags(self, prefix: str = "") -> dict[str, Any]:
        sql = self._sql
        if prefix:
            rows = await self._fetch(sql.flags_with_prefix, (len(prefix), prefix))
        else:
            rows = await self._fetch(sql.all_flags, ())
        return {key: loads(value) for key, value in rows}
