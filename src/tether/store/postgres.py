"""PostgreSQL RunStore: the shared, multi-machine backend (psycopg 3, async pool).

Every table lives in ``schema`` (created if missing), so one database can host several isolated
tether deployments (and tests a fresh schema each). Connections run in autocommit: a single
statement is its own transaction and costs one round trip; ``commit()`` is one statement (the
``tether_commit`` function, see ``pg_commit``). Needs the ``postgres`` extra.

Durability, as for SQLite: ``"process"`` (default) runs its sessions with
``synchronous_commit = off``: a commit survives any crash of tether's own processes (the server
has it), but a crash of the database server or its machine may lose the last fraction of a
second of commits (never corrupting anything: the WAL stays consistent). ``"power-loss"`` keeps
the server's flush on every commit (its ``synchronous_commit`` setting, normally ``on``).

Outages: an operation that fails because the server went away or refuses connections (a restart,
a failover: see ``transient``) is retried in place on a fresh connection, backing off from
0.05 s to 1 s, for up to ``retry_for`` seconds (then the error is raised). One WARNING says the
server is unreachable, one INFO that it is back. A run's step commit is safe to resend: it is
fenced by the lease token and numbers its events, so after a dropped connection the store reads
the run back and tells "applied before the drop" (the run's event counter already holds the
commit's last event) from "never applied" before sending it again; a commit it cannot tell
about (no numbered events, or an admin commit) is resent only when it never left this process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NoReturn

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import (
    ConfigurationError,
    IllegalTransitionError,
    LeaseLostError,
    RunNotFoundError,
    StoreError,
    missing_dependency,
)
from tether.core.finite import is_number
from tether.core.lifecycle import ACTIVE, RunStatus

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise missing_dependency("postgres", "psycopg") from exc

from tether.core.serde import dumps, loads
from tether.store import (
    pg_claim,
    pg_commit,
    pg_commit_batch,
    pg_commit_group,
    pg_control,
    pg_submit,
    pg_submit_batch,
    run_head,
    wakeup,
)
from tether.store.control import check_take
from tether.store.lease_renewer import DbApiConnection, SqlLeaseRenewer
from tether.store.live import Deliver
from tether.store.memory import check_node_writes
from tether.store.pg_listen import PgListener, wakeup_listener
from tether.store.pg_live import PgLiveChannel
from tether.store.pg_pool import ConnectionPool
from tether.store.rows import node_write_params, row_to_run
from tether.store.server_clock import Sample, ServerClock
from tether.store.sql_base import Dialect, Statements
from tether.store.sql_store import SqlStore, Tx, existing_run, lease_unowned_sql
from tether.store.transient import OutageLog, Retry, StoreRetry, is_transient
from tether.store.types import Checkpoint, Commit, Event, RunRecord
from tether.store.wakeup import channel_for

Conn = psycopg.AsyncConnection[Any]
log = logging.getLogger("tether.store")

_SERVER_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
SKEW_WARNING = 1.0
"""Seconds between this host's clock and the server's beyond which opening the store (and a
later measurement that finds it moved that much) logs a WARNING."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresDialect(Dialect):
    name = "postgres"
    blob = "BYTEA"
    real = "DOUBLE PRECISION"
    bigint = "BIGINT"
    share_lock = " FOR SHARE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    row_lock = " FOR UPDATE"
    runs_options = " WITH (fillfactor = 80)"
    effects_order = "ord"
    effects_order_column = "\n            ord BIGINT GENERATED ALWAYS AS IDENTITY,"

    def __init__(self, schema: str) -> None:
        super().__init__(f"{quote_ident(schema)}.tether_")
        self.channel = channel_for(schema)
        """The NOTIFY channel of this schema's wake-ups (``store.wakeup``)."""

    def table_exists(self, name: str) -> tuple[str, tuple[str, ...]]:
        return "SELECT to_regclass(?) IS NOT NULL", (self.prefix + name,)

    def sql(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    def extra_migrations(self) -> dict[int, list[str]]:
        p, ch = self.prefix, channel_for_dialect(self)
        return {
            1: pg_commit.functions(p, ch),
            2: pg_control.functions(p),
            4: pg_commit.functions(p, ch),  # CREATE OR REPLACE: the v4 commit function
            5: pg_commit.functions(p, ch),  # recompiled for the runs row's thread_id
            # v7: the queue columns, a new parameter (available_at) and the wake-up NOTIFY
            7: [pg_commit.drop_v6(p), *pg_commit.functions(p, ch)],
            10: pg_claim.functions(p),  # the claim under shared limits, in one round trip
            18: [pg_claim.drop_v10(p), *pg_claim.functions(p)],  # + the previous owner
            24: pg_claim.functions(p),  # its candidates in claim order from indexes
        }


def channel_for_dialect(d: Dialect) -> str:
    assert d.channel is not None  # PostgresDialect always has one
    return d.channel


def _refused(exc: Exception) -> bool:
    """The server refused a statement (``exc``): nothing of it applied. Anything else (a
    dropped connection, an error on this side) may have come before or after it applied."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate is not None and not is_transient(exc)


class _PgTx:
    __slots__ = ("conn",)

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
        cur = await self.conn.execute(sql, params, binary=True)
        return await cur.fetchall()

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return (await self.conn.execute(sql, params)).rowcount

    async def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        async with self.conn.cursor() as cur:
            await cur.executemany(sql, params)


class PostgresStore(SqlStore):
    """A RunStore in PostgreSQL: ``await store.setup()`` opens the pool and migrates."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        clock: Clock = SYSTEM_CLOCK,
        pool_size: int = 10,
        connect_timeout: float = 30.0,
        durability: str = "process",
        retry_for: float = 30.0,
    ) -> None:
        if durability not in ("process", "power-loss"):
            raise ConfigurationError(
                f"unknown Postgres durability {durability!r}; use 'process' (survives crashes of "
                "tether processes, the default) or 'power-loss' (flush every commit)"
            )
        self.durability = durability
        self.dsn = dsn
        self.schema = schema
        self.clock: Clock = ServerClock() if clock is SYSTEM_CLOCK else clock
        """The database server's time (``store.server_clock``) unless a clock was passed in."""
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        if not is_number(retry_for) or retry_for < 0:
            raise ConfigurationError(
                f"retry_for must be >= 0 seconds (got {retry_for}): how long an operation is "
                "retried while the server is unreachable (0: never)"
            )
        self.retry = StoreRetry(give_up_after=retry_for)
        self.outage = OutageLog(
            log,
            f"PostgreSQL (schema {schema!r})",
            f"operations retry in place for up to {retry_for:g} s"
            if retry_for
            else "operations fail (retry_for=0)",
        )
        self._pool: ConnectionPool | None = None
        dialect = PostgresDialect(schema)
        self.wakeups = wakeup.hub(f"postgres:{dsn}|{schema}")
        self.listener: PgListener | None = None
        """The LISTEN connection relaying other processes' wake-ups (once subscribed to)."""
        self._sql = Statements(dialect)
        self._commit_sql = pg_commit.call(dialect.prefix)
        # a step commit given Commit.base fetches only the run's small columns
        self._commit_head_sql = pg_commit.call(dialect.prefix, run_head.HEAD_COLUMNS)
        self._take_sql = pg_control.call(dialect.prefix)
        self._submit_sql = pg_submit.statement(dialect.prefix, channel_for_dialect(dialect))
        self._lock_metadata = (
            f"SELECT metadata FROM {dialect.prefix}runs WHERE run_id = %s FOR UPDATE"
        )
        self._group = pg_commit_group.CommitGroup(
            self._commit, self._send_batch, _refused, self._after_lost_reply
        )
        """Step commits made in one turn of the event loop: one statement for all of them."""
        self.submits = pg_submit_batch.SubmitBatcher(self, single=self._create_one)
        """``create_run``: runs created in one turn of the event loop, one statement for all
        (its counters say how they were written)."""

    def __repr__(self) -> str:
        return (
            f"PostgresStore(schema={self.schema!r}, pool_size={self.pool_size}, "
            f"durability={self.durability!r})"
        )

    # -- driver -----------------------------------------------------------------------------
    def _opened(self) -> ConnectionPool:
        if self._pool is None:
            raise StoreError("PostgresStore is not open: call `await store.setup()` first")
        return self._pool

    def _conn(self) -> AbstractAsyncContextManager[Conn]:
        return self._opened().connection()

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        async def op(conn: Conn) -> list[Any]:
            return await (await conn.execute(sql, params, binary=True)).fetchall()

        return await self._opened().run(op)

    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Any:
        async def op(conn: Conn) -> Any:
            return await (await conn.execute(sql, params, binary=True)).fetchone()

        return await self._opened().run(op)

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        async def op(conn: Conn) -> int:
            return (await conn.execute(sql, params)).rowcount

        return await self._opened().run(op)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._opened().transaction() as conn:
            yield _PgTx(conn)

    def _where(self) -> str:
        return f"PostgreSQL schema {self.schema!r}"

    async def _open(self) -> None:
        if self._pool is not None:
            return
        pool = ConnectionPool(
            self.dsn,
            max_size=max(self.pool_size, 1),
            connect_timeout=self.connect_timeout,
            synchronous_commit=self.durability == "power-loss",
            retry=self.retry,
            outage=self.outage,
        )
        try:
            await pool.open()
        except Exception as exc:
            await pool.close()
            raise StoreError(
                f"cannot connect to PostgreSQL ({exc}); check the DSN, that the server is "
                "running and accepts connections from this host"
            ) from exc
        self._pool = pool
        await self._align_clock()

    async def _align_clock(self) -> None:
        """Measure how far the server's clock is from this host's (three round trips, the
        shortest wins) when the store tells time by the server (``ServerClock``)."""
        clock = self.clock
        if not isinstance(clock, ServerClock):
            return

        async def op(conn: Conn) -> list[Sample]:
            samples = []
            for _ in range(3):
                sent = clock.local()
                row = await (await conn.execute(_SERVER_NOW)).fetchone()
                samples.append((sent, float(row[0]) if row else math.nan, clock.local()))
            return samples

        before = clock.offset
        clock.align(await self._opened().run(op))
        if abs(clock.offset) >= SKEW_WARNING and abs(clock.offset - before) >= SKEW_WARNING:
            log.warning(
                "this host's clock is %.1f s %s PostgreSQL's; tether tells time by the "
                "server's (leases, timers, heartbeats), but check NTP on this host",
                abs(clock.offset),
                "behind" if clock.offset > 0 else "ahead of",
            )

    async def _before_leasing(self) -> None:
        """Measure the offset again once ``REALIGN_EVERY`` passed (before taking leases, whose
        expiry other hosts compare with their own reading of the server's time). A failure
        leaves the last offset in place until the next interval: the operation that follows
        meets the outage itself."""
        clock = self.clock
        if isinstance(clock, ServerClock) and clock.due():
            try:
                await self._align_clock()
            except Exception as exc:
                clock.postpone()
                log.debug("measuring the server's clock failed: %s", exc)

    async def _lock_schema(self, tx: Tx) -> None:
        digest = hashlib.sha256(f"tether:{self.schema}".encode()).digest()
        await tx.execute(
            "SELECT pg_advisory_xact_lock(%s)", (int.from_bytes(digest[:8], "big", signed=True),)
        )
        if not await tx.fetch("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)):
            await tx.execute(f"CREATE SCHEMA {quote_ident(self.schema)}")

    def lease_renewer(self) -> SqlLeaseRenewer:
        """A renewer on a blocking connection of its own, for the runtime's heartbeat thread."""

        def connect() -> DbApiConnection:
            return psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(1, int(self.connect_timeout)),
            )

        return SqlLeaseRenewer(connect, self._sql, self.clock)

    def subscribe_wakeups(self, listener: wakeup.Listener) -> Callable[[], None]:
        """``WakeSource``: also hear other processes' wake-ups, on a LISTEN connection this
        store opens with the first subscription (``store.pg_listen``)."""
        stop = super().subscribe_wakeups(listener)
        if self.listener is None:
            channel = self._sql.dialect.channel
            assert channel is not None
            self.listener = wakeup_listener(self.dsn, channel, self.wakeups, self.connect_timeout)
            self.listener.start()
        return stop

    def live_channel(self, deliver: Deliver) -> PgLiveChannel:
        """``store.live.LiveSource``: this process's end of the schema's live-event channel
        (``NOTIFY``; ``store.pg_live``). Close it before the store."""
        return PgLiveChannel(self.dsn, self.schema, self._conn, deliver, self.connect_timeout)

    async def close(self) -> None:
        await self._group.wait_sent()
        if self.listener is not None:
            await self.listener.close()
            self.listener = None
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- control plane ----------------------------------------------------------------------
    async def take_tokens(self, bucket: str, rate: float, burst: float, n: float = 1.0) -> float:
        """One statement: the ``tether_take_tokens`` function locks, refills and takes."""
        check_take(rate, burst, n)
        row = await self._fetch_one(self._take_sql, (bucket, rate, burst, n, self.clock.now()))
        return float(row[0])

    # -- the hot path: one statement, one round trip ----------------------------------------
    async def create_run(
        self,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        """Runs created concurrently (a burst of ``submit`` or ``start`` calls in this process)
        are written together, one statement for a batch (``pg_submit_batch``); a run created
        alone takes the one-run statement (``_create_one``)."""
        return await self.submits.create_run(run, checkpoint, transitions, events)

    async def _create_one(
        self,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        """One statement (``pg_submit``). Resent in place after a dropped connection: a
        resend that finds the run already there with this very submission's ``created_at``
        knows the lost reply was a success."""
        now = self.clock.now()
        claimable = run.owner is None and run.status in ACTIVE
        params, row = pg_submit.params(run, checkpoint, transitions, events, now, claimable)
        pool = self._opened()
        retry: Retry | None = None
        resent = False  # an earlier send may have applied
        while True:
            started, sent = time.monotonic(), False
            try:
                async with pool.connection() as conn:
                    sent = True
                    got = await self._submit_once(conn, params)
                break
            except psycopg.Error as exc:
                retry = await pool.retry_after(retry, exc)
                if retry is None:
                    raise
                resent = resent or sent
        pool.answered(started)
        inserted = got is not None and bool(got[0])
        if not inserted and resent:
            found = await self._fetch_one(self._sql.get_run, (run.run_id,))
            # this submission's own row (its created_at to the microsecond): an earlier send
            # applied and its reply was lost
            inserted = found is not None and found[15] == now and found[11] == run.input_hash
        if inserted:
            if claimable:
                self.wakeups.notify(run.queue, run.available_at)
            return row_to_run(row), True
        by_key = None
        if run.idempotency_key is not None:
            by_key = await self._fetch_one(self._sql.get_run_by_key, (run.idempotency_key,))
        return existing_run(run, by_key), False

    async def commit(self, run_id: str, token: int | None, commit: Commit) -> RunRecord:
        """One statement; resent in place after a dropped connection when that cannot apply it
        twice (see the module docstring). A run it leaves claimable is announced (the commit
        function NOTIFYs other processes; the runtimes here hear it at once). Fenced step
        commits that several runs make in the same turn of the event loop go out as one
        statement (``pg_commit_group``)."""
        if token is not None and pg_commit_group.groupable(token, commit):
            run = await self._group.commit(run_id, token, commit)
        else:
            run = await self._commit(run_id, token, commit)
        if wakeup.announces(token, commit, run):
            self.wakeups.notify(run.queue, run.available_at)
        return run

    async def lease_and_commit(
        self, run_id: str, owner: str, ttl: float, token: int, commit: Commit
    ) -> RunRecord | None:
        """``LeaseCommit``: the lease statement and the commit function in one transaction.
        Not resent after a dropped connection (it may have applied): None then, and the
        caller takes the lease the usual way and reads the run again (a resume that did
        apply then finds the run back at work, and says so)."""
        await self._before_leasing()
        now = self.clock.now()
        pool = self._opened()
        started = time.monotonic()
        base = commit.base
        sql = self._sql.memoized(
            ("lease_unowned", base is not None),
            lambda: lease_unowned_sql(self._sql, base is not None),
        )
        params: tuple[Any, ...] = (owner, now + ttl, run_id, token)
        if base is not None:
            params += (base.event_seq,)
        try:
            async with pool.connection() as conn, conn.transaction():
                cur = await conn.execute(sql, params)
                if await cur.fetchone() is None:
                    return None  # owned, or its token moved: nothing written
                row = await self._commit_once(conn, run_id, token + 1, now, commit)
        except psycopg.Error as exc:
            if is_transient(exc):
                return None
            self._raise_commit_error(exc, run_id, token + 1, commit)
        pool.answered(started)
        run = row_to_run(row)
        if wakeup.announces(token, commit, run):
            self.wakeups.notify(run.queue, run.available_at)
        return run

    async def commit_batch(self, items: Sequence[tuple[str, int, Commit]]) -> list[RunRecord]:
        """``CommitBatcher``: fenced commits of several runs in one statement and transaction
        (see ``pg_commit_batch``). Each commit carries its ``base`` and no metadata merge or
        journal entries (the first-phase moves of a claimed batch do not)."""
        if not items:
            return []
        for run_id, token, commit in items:
            if run_head.usable(commit, token) is None or commit.metadata or commit.node_writes:
                raise ValueError(
                    f"commit_batch takes fenced commits carrying their base, without metadata "
                    f"or node writes (run {run_id})"
                )
        return await self._send_batch(items)

    async def _send_batch(self, items: Sequence[tuple[str, int, Commit]]) -> list[RunRecord]:
        """``commit_batch`` of items it takes (checked): one statement, not retried."""
        now = self.clock.now()
        commits = [pg_commit.params(run_id, token, now, c, None) for run_id, token, c in items]
        params = pg_commit_batch.params(commits)
        pool = self._opened()
        started = time.monotonic()
        async with pool.connection() as conn:
            sql = pg_commit_batch.statement(self._sql.dialect.prefix)
            rows = await (await conn.execute(sql, params, binary=True)).fetchall()
        pool.answered(started)
        heads = {r[0]: r[1:] for r in rows}
        out = []
        for run_id, _token, commit in items:
            assert commit.base is not None
            out.append(await self._from_head(commit.base, heads[run_id], run_id, commit, started))
        return out

    async def _commit(self, run_id: str, token: int | None, commit: Commit) -> RunRecord:
        now = self.clock.now()
        last_seq = pg_commit.last_event_seq(commit) if token is not None else None
        pool = self._opened()
        retry: Retry | None = None
        base = run_head.usable(commit, token)
        while True:
            started, sent = time.monotonic(), False
            try:
                async with pool.connection() as conn:
                    sent = True
                    row = await self._commit_once(conn, run_id, token, now, commit)
                if base is not None:
                    return await self._from_head(base, row, run_id, commit, started)
                break
            except psycopg.Error as exc:
                if sent and last_seq is None:  # it may have applied, and nothing would tell
                    self._raise_commit_error(exc, run_id, token, commit)
                retry = await pool.retry_after(retry, exc)
                if retry is None:
                    self._raise_commit_error(exc, run_id, token, commit)
            if sent and last_seq is not None:
                assert token is not None
                cur = await self._fetch_one(self._sql.get_run, (run_id,))
                done = pg_commit.applied(cur, token, last_seq, len(commit.events))
                if done is None:  # the run moved in a way this commit cannot explain: say so
                    raise LeaseLostError(run_id, token)
                if done:
                    row = cur
                    break
        pool.answered(started)
        assert row is not None
        return row_to_run(row)

    async def _after_lost_reply(self, run_id: str, token: int, commit: Commit) -> RunRecord:
        """A fenced commit with numbered events whose batch lost its reply (it applied with the
        whole batch, or not at all): the run as it stands says which; sent by itself if not."""
        last_seq = pg_commit.last_event_seq(commit)
        assert last_seq is not None  # pg_commit_group.groupable
        cur = await self._fetch_one(self._sql.get_run, (run_id,))
        done = pg_commit.applied(cur, token, last_seq, len(commit.events))
        if done is None:  # the run moved in a way this commit cannot explain: say so
            raise LeaseLostError(run_id, token)
        if done:
            return row_to_run(cur)
        return await self._commit(run_id, token, commit)

    async def _submit_once(self, conn: Conn, params: Sequence[Any]) -> Any:
        """The submit statement's row: (inserted, notified) counts."""
        return await (await conn.execute(self._submit_sql, params, binary=True)).fetchone()

    async def _from_head(
        self, base: RunRecord, head: Any, run_id: str, commit: Commit, started: float
    ) -> RunRecord:
        """The committed run from the small columns the commit returned and the writer's copy
        (``Commit.base``); read whole only if ``base`` missed a commit (its ``event_seq``)."""
        self._opened().answered(started)
        if head[6] - len(commit.events) != base.event_seq:
            return await self.get_run(run_id)
        run = run_head.merge(base, head)
        merged = None
        if commit.metadata is not None:
            merged = loads(dumps({**base.metadata, **commit.metadata}))
        run_head.apply_fields(run, commit, merged)
        return run

    async def _commit_once(
        self, conn: Conn, run_id: str, token: int | None, now: float, commit: Commit
    ) -> Any:
        """The commit statement's row: the whole run, or (given ``Commit.base``) its head."""
        if commit.metadata is None and not commit.node_writes:
            sql = self._commit_sql_for(commit, token)
            params = pg_commit.params(run_id, token, now, commit, None)
            return await (await conn.execute(sql, params, binary=True)).fetchone()
        return await self._commit_merging(conn, run_id, token, now, commit)

    def _commit_sql_for(self, commit: Commit, token: int | None) -> str:
        return self._commit_sql if run_head.usable(commit, token) is None else self._commit_head_sql

    def _raise_commit_error(
        self, exc: psycopg.Error, run_id: str, token: int | None, commit: Commit
    ) -> NoReturn:
        state = exc.sqlstate
        if state == pg_commit.NOT_FOUND:
            raise RunNotFoundError(run_id) from None
        if state == pg_commit.LEASE_LOST:
            raise LeaseLostError(run_id, token) from None
        if state == pg_commit.WRONG_STATUS:
            current = exc.diag.message_primary or "?"
            dst = pg_commit.first_destination(commit).value
            raise IllegalTransitionError(current, dst) from None
        raise exc

    async def _commit_merging(
        self, conn: Conn, run_id: str, token: int | None, now: float, commit: Commit
    ) -> Any:
        """A commit that merges metadata or journals node writes: a transaction around the
        commit function (the node writes are fenced like the commit, and roll back with it)."""
        check_node_writes(run_id, commit)
        async with conn.transaction():
            merged = None
            if commit.metadata is not None:
                cur = await conn.execute(self._lock_metadata, (run_id,), binary=True)
                current = await cur.fetchone()
                if current is None:
                    raise RunNotFoundError(run_id)
                merged = dumps({**(loads(current[0]) or {}), **commit.metadata})
            for w in commit.node_writes:
                put = (*node_write_params(w, now), run_id, token, token)
                await conn.execute(self._sql.put_node_write, put)
            params = pg_commit.params(run_id, token, now, commit, merged)
            sql = self._commit_sql_for(commit, token)
            return await (await conn.execute(sql, params, binary=True)).fetchone()
