"""SQLite RunStore: the embedded, no-service backend (stdlib ``sqlite3``).

Calls run inline on the caller's thread: a local commit costs microseconds, far less than a hop
to a worker thread. The database is opened in WAL mode so readers never block the writer, and
every write is either one statement or one ``BEGIN IMMEDIATE`` transaction, so several processes
can share one file (a worker killed mid-run is resumed by another process). ``busy_timeout``
bounds how long a writer waits for another process's transaction.

Durability: ``"process"`` (default, ``synchronous=NORMAL``) survives any process crash; a power
loss may drop the last commits. ``"power-loss"`` (``synchronous=FULL``) syncs every commit.

The WAL is checkpointed off the hot path and kept under ``wal_limit`` bytes (``sqlite_wal``).

A new database file gets ``PAGE_SIZE`` (2 KiB) pages, a file made before keeps its own: every
table and index holds at least one page, and tether's schema has about seventy, so 4 KiB pages
left an empty store at 266 KB; a step's commit also writes fewer bytes to the WAL (the 1,000-step
bench: 75 -> 68 µs a step). Checkpoint blobs of 512 bytes or more are stored compressed
(``blob_codec``), so several fit a page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import (
    ConfigurationError,
    IdempotencyConflictError,
    LeaseLostError,
    StoreFileLostError,
)
from tether.store import schema, wakeup
from tether.store.control import check_take, refill, take
from tether.store.disk_space import scarce_bytes
from tether.store.lease_renewer import SqlLeaseRenewer
from tether.store.sql_base import Dialect, Statements
from tether.store.sql_store import SqlStore, Tx
from tether.store.sqlite_commit import CommitWriter, Hop, Queued
from tether.store.sqlite_wal import WAL_LIMIT, WalKeeper
from tether.store.sqlite_watch import DataVersionWatcher
from tether.store.types import Checkpoint, Commit, Event, RunRecord

_T = TypeVar("_T")

PAGE_SIZE = 2048
"""The page size of a database file this store creates (an existing file keeps its own)."""

Durability = Literal["process", "power-loss"]
_SYNCHRONOUS = {"process": "NORMAL", "power-loss": "FULL"}


class SqliteDialect(Dialect):
    name = "sqlite"
    blob = "BLOB"
    real = "REAL"
    bigint = "INTEGER"
    compact_rows = " WITHOUT ROWID"
    effects_order = "rowid"
    inputs_apart = True  # SQLite rewrites the whole row on UPDATE: keep the input out of it

    def table_exists(self, name: str) -> tuple[str, tuple[str, ...]]:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return sql, (self.prefix + name,)


@cache
def _statements() -> Statements:
    """The statements of every SQLite store (no table prefix: they are all the same), rendered
    once per process: opening a store is on the path of a CLI call or a fresh-process resume."""
    return Statements(SqliteDialect())


def rollback(db: sqlite3.Connection) -> None:
    """Roll back what is left of a transaction, never hiding why it failed: after a full disk
    or an I/O error SQLite has already rolled back (a second ROLLBACK would raise "no
    transaction is active" in place of the cause), and a ROLLBACK that fails in turn is
    dropped so the original error is the one that propagates. The run store and the memory
    store both roll back with it."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


class _Immediate:
    """``with tx:`` runs the block in ``BEGIN IMMEDIATE`` (the write lock taken up front).

    ``first_wal``: the WAL file, while this connection's first write transaction is still to
    come and it may start a new, empty WAL (see ``_begin_first``); None afterwards."""

    __slots__ = ("_relaxed", "db", "first_wal")

    def __init__(self, db: sqlite3.Connection, first_wal: str | None = None) -> None:
        self.db = db
        self.first_wal = first_wal
        self._relaxed = False

    def __enter__(self) -> sqlite3.Connection:
        if self.first_wal is not None:
            self._begin_first(self.first_wal)
        else:
            self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def _begin_first(self, wal: str) -> None:
        """Begin the first write transaction; into an empty WAL file, without syncing the WAL
        header it writes (``synchronous=OFF`` for this one transaction).

        A process that opens the file after the last one closed it (a CLI call, a fresh
        process resuming a run) finds no WAL: SQLite writes a new header before the first
        frame and syncs it (and the directory, for the new file): an fdatasync or two, 1 to
        10 ms on a busy disk, the largest cost of such a process's first commit. SQLite syncs
        that header so that frames left over from before a WAL *restart* cannot be replayed
        after a power loss (its ticket ff5be73dee); an empty file holds no such frames. The
        size is checked again under the write lock: no other connection can write the WAL
        then. What a power loss may then do is what ``synchronous=NORMAL`` already allows in
        WAL mode: drop the last commits (their frames were never synced either), never
        corrupt the database; a process crash loses nothing. The header is synced with the
        next checkpoint's sync of the WAL."""
        self.first_wal = None
        db = self.db
        if _file_size(wal) == 0:
            db.execute("PRAGMA synchronous=OFF")  # refused inside a transaction: set before
            try:
                db.execute("BEGIN IMMEDIATE")
            except BaseException:
                db.execute("PRAGMA synchronous=NORMAL")
                raise
            if _file_size(wal) == 0:
                self._relaxed = True
                return
            db.execute("ROLLBACK")  # another process wrote the WAL meanwhile: sync as usual
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                    return
                except BaseException:
                    self._rollback()
                    raise
            self._rollback()
        finally:
            if self._relaxed:
                self._relaxed = False
                self.db.execute("PRAGMA synchronous=NORMAL")

    def _rollback(self) -> None:
        rollback(self.db)


def _file_size(path: str) -> int:
    """The size of the file at ``path``; -1 when there is none."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


class _SqliteTx:
    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
        return self.db.execute(sql, params or ()).fetchall()

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return self.db.execute(sql, params or ()).rowcount

    async def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, params)


def _enter_wal(db: sqlite3.Connection, busy_timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``: the switch of a new file needs its exclusive lock, and
    SQLite may answer "database is locked" at once (no busy handler) while other processes
    open the same new file: try again until ``busy_timeout`` passed."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(pause)  # only at open, and only while another process holds the lock
        pause = min(pause * 2, 0.1)


def _diagnosed(path: str, exc: sqlite3.OperationalError) -> sqlite3.OperationalError:
    """The error opening ``path`` raised, said as a full disk when it is one: with no store
    open the -wal and -shm files are gone, and SQLite, unable to make them again, only says
    "disk I/O error"."""
    free = scarce_bytes(path)
    if free is None:
        return exc
    full = sqlite3.OperationalError(
        f"database or disk is full: the disk holding {path} has {free} bytes free, too few for "
        f"SQLite to make its -wal and -shm files ({exc}); free some space"
    )
    full.sqlite_errorcode = 13  # SQLITE_FULL
    full.sqlite_errorname = "SQLITE_FULL"
    return full


class SqliteStore(SqlStore):
    """A RunStore in one SQLite file (or ``":memory:"``, private to this store)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "process",
        clock: Clock = SYSTEM_CLOCK,
        busy_timeout: float = 30.0,
        wal_limit: int = WAL_LIMIT,
    ) -> None:
        if durability not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"unknown SQLite durability {durability!r}; use 'process' (survives process "
                "crashes, the default) or 'power-loss' (fsync every commit)"
            )
        self.path = os.fspath(path)
        self.durability = durability
        self.clock = clock
        self.busy_timeout = busy_timeout
        if self.path != ":memory:" and not self.path.startswith("file:"):
            parent = os.path.dirname(self.path) or "."
            if not os.path.isdir(parent):  # one stat when it exists (a fresh process's open)
                Path(parent).mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
            uri=self.path.startswith("file:"),
        )
        try:
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new file only: set before WAL mode
            _enter_wal(db, busy_timeout)
        except sqlite3.OperationalError as exc:
            db.close()
            raise _diagnosed(self.path, exc) from exc
        db.execute(f"PRAGMA synchronous={_SYNCHRONOUS[durability]}")
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        self._db = db
        file_backed = self.path != ":memory:" and "mode=memory" not in self.path
        if file_backed:
            db.execute("PRAGMA wal_autocheckpoint=0")  # WalKeeper does it off the hot path
        self._wal = WalKeeper(
            self.path if file_backed else None,
            db,
            limit=wal_limit,
            busy_timeout_ms=int(busy_timeout * 1000),
        )
        self._queue: list[Queued] = []
        self._creates: list[_Create] = []
        self._flush_due = False
        self._commits = 0
        relax = file_backed and durability == "process" and not self.path.startswith("file:")
        self._tx = _Immediate(db, self.path + "-wal" if relax else None)
        self._cur = db.cursor()  # commits' statements: no cursor (and its weakref) per statement
        self._sql = _statements()
        self._writer = CommitWriter(self._sql, clock)
        self.wakeups = wakeup.hub(_hub_key(self.path, id(self)))
        self._watcher: DataVersionWatcher | None = None
        self._file_backed = file_backed

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, durability={self.durability!r})"

    # -- driver -----------------------------------------------------------------------------
    def _in_place(self) -> None:
        """Raise ``StoreFileLostError`` once the files at the path are no longer the ones open
        here (deleted, replaced: ``WalKeeper.look``, a clock read between two looks)."""
        lost = self._wal.look()
        if lost is not None:
            raise StoreFileLostError(lost)

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self._in_place()
        return self._db.execute(sql, params).fetchall()

    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Any:
        self._in_place()
        rows = self._db.execute(sql, params).fetchall()  # drained: no statement left open
        return rows[0] if rows else None

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        self._in_place()
        return self._db.execute(sql, params).rowcount

    async def _fetch_write(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A write statement's rows; the connection's first write runs in ``_Immediate``
        (into an empty WAL without syncing its header, see ``_Immediate._begin_first``)."""
        if self._tx.first_wal is None:
            return await self._fetch(sql, params)
        self._in_place()
        with self._tx as db:
            return db.execute(sql, params).fetchall()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        self._in_place()
        with self._tx as db:
            yield _SqliteTx(db)

    def _where(self) -> str:
        return self.path

    async def _open(self) -> None:
        return None  # connected in __init__

    async def setup(self) -> None:
        """A database already at this tether's schema version is read once, without the write
        lock: opening a store never queues behind another process's writer, and costs one read.
        Anything else (new file, older or newer schema) takes the locked migration path."""
        try:
            row = self._db.execute(schema.current_version(self._sql.dialect)).fetchone()
        except sqlite3.OperationalError:  # no version table yet
            row = None
        if row is None or row[0] != schema.LATEST_VERSION:
            await super().setup()

    async def _lock_schema(self, tx: Tx) -> None:
        return None  # BEGIN IMMEDIATE already holds the database's write lock

    def lease_renewer(self) -> SqlLeaseRenewer | None:
        """A renewer on a second connection to the file, for the runtime's heartbeat thread
        (None for a private in-memory database, which no other process can take runs from)."""
        if self.path == ":memory:" or "mode=memory" in self.path:
            return None

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=self.path.startswith("file:"),
            )
            db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            return db

        return SqlLeaseRenewer(connect, self._sql, self.clock)

    def subscribe_wakeups(self, listener: wakeup.Listener) -> Callable[[], None]:
        """``WakeSource``: also hear of runs other processes make claimable in the file (its
        data version is watched once subscribed to: ``store.sqlite_watch``)."""
        stop = super().subscribe_wakeups(listener)
        if self._watcher is None and self._file_backed:
            prefix = self._sql.dialect.prefix
            self._watcher = DataVersionWatcher(self._db, prefix, self.wakeups, self.clock.now)
            self._watcher.start()
        return stop

    async def close(self) -> None:
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None
        self._wal.close()
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._db.close()

    # -- effects -----------------------------------------------------------------------------
    async def effect_keys(self, run_id: str, prefix: str) -> set[str]:
        """The keys of ``run_id``'s effects that begin with ``prefix``, in one range read of the
        primary key (``tether.graph.context.TaskEffects``: a task's calls, read once)."""
        self._in_place()
        p = self._sql.dialect.prefix
        sql = self._sql.memoized(
            ("effect_keys",),
            lambda: f"SELECT key FROM {p}effects WHERE run_id = ? AND key >= ? AND key < ?",
        )
        rows = self._db.execute(sql, (run_id, prefix, prefix + "\U0010ffff")).fetchall()
        return {r[0] for r in rows}

    # -- control plane ----------------------------------------------------------------------
    async def take_tokens(self, bucket: str, rate: float, burst: float, n: float = 1.0) -> float:
        """Read, refill, take and write back inside one ``BEGIN IMMEDIATE``: the write lock is
        held from the read on, so workers in other processes queue behind it. Like ``_flush``
        it runs to completion on the loop thread, so it never overlaps a pending commit batch
        (that one runs later, in its own transaction)."""
        check_take(rate, burst, n)
        self._in_place()
        sql = self._sql
        with self._tx as db:
            now = self.clock.now()  # read under the lock: updates land in time order
            row = db.execute(sql.get_bucket, (bucket,)).fetchone()
            tokens, updated_at = row if row is not None else (burst, now)
            left, wait = take(refill(tokens, updated_at, now, rate, burst), n, rate)
            db.execute(sql.put_bucket, (bucket, left, now))
        return wait

    # -- a resume: its lease and its answer in one write -----------------------------------
    async def lease_and_commit(
        self, run_id: str, owner: str, ttl: float, token: int, commit: Commit
    ) -> RunRecord | None:
        """``LeaseCommit``: one ``BEGIN IMMEDIATE`` that checks the run is unowned under
        ``token`` and writes the commit with the lease in the run's one UPDATE (a resume in a
        fresh process compiles and commits one statement on the runs table instead of two).
        It runs to its end on the loop's turn, like ``take_tokens``, never inside a group
        commit's batch."""
        self._in_place()
        expires = self.clock.now() + ttl
        try:
            with self._tx:
                run = self._writer.apply(self._cur, run_id, token, commit, lease=(owner, expires))
        except LeaseLostError:
            return None  # owned, or its token moved: nothing written
        self._commits += 1
        self._announce(token, commit, run)
        self._wal.after_commit(self._commits)
        return run

    # -- the hot path: group commit ----------------------------------------------------------
    async def commit(self, run_id: str, token: int | None, commit: Commit) -> RunRecord:
        """Fenced, atomic commit. Commits requested in the same event-loop tick (many runs
        stepping at once) share one transaction: one WAL append instead of one per run."""
        fut: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        self._queue.append((run_id, token, commit, fut))
        if not self._flush_due:
            self._flush_due = True
            fut.get_loop().call_soon(self._flush)
        return await fut

    async def create_run(
        self,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[Hop],
        events: Sequence[Event] = (),
    ) -> tuple[RunRecord, bool]:
        """Group-created like ``commit``: runs started in the same event-loop tick (a burst of
        ``start`` calls) are written in one transaction with the commits of that tick, each
        one durable before its caller goes on."""
        fut: asyncio.Future[tuple[RunRecord, bool]] = asyncio.get_running_loop().create_future()
        self._creates.append((run, checkpoint, transitions, events, fut))
        if not self._flush_due:
            self._flush_due = True
            fut.get_loop().call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        self._flush_due = False
        creates, self._creates = self._creates, []
        batch, self._queue = self._queue, []
        lost = self._wal.look()
        if lost is not None:  # the file is gone: nothing written now would be kept
            for _r, _t, _c, fut in batch:
                _settle(fut, StoreFileLostError(lost))
            for item in creates:
                self._created(item[4], StoreFileLostError(lost))
            return
        self._commits += len(batch) + len(creates)
        if len(batch) + len(creates) > 1:
            try:
                with self._tx as db:
                    made = [self._try_create(db, *item[:4]) for item in creates]
                    cur, writer = self._cur, self._writer
                    heads = writer.heads(cur, batch)
                    outcomes = [writer.try_apply(cur, *item[:3], heads) for item in batch]
            except Exception:
                pass  # an unexpected error mid-batch: fall back to one transaction per write
            else:
                for item, new in zip(creates, made, strict=True):
                    self._created(item[4], new)
                for (_r, token, commit, fut), out in zip(batch, outcomes, strict=True):
                    _settle(fut, out)
                    self._announce(token, commit, out)
                self._wal.after_commit(self._commits)
                return
        for run, cp, trs, evs, created in creates:
            one: tuple[RunRecord, bool] | BaseException
            try:
                with self._tx as db:
                    one = _done(self._insert_new_run(_SqliteTx(db), run, cp, trs, evs))
            except Exception as exc:
                one = exc
            self._created(created, one)
        for run_id, token, commit, fut in batch:
            single: RunRecord | BaseException
            try:
                with self._tx:
                    single = self._writer.apply(self._cur, run_id, token, commit)
            except Exception as exc:
                single = exc
            _settle(fut, single)
            self._announce(token, commit, single)
        self._wal.after_commit(self._commits)

    def _try_create(
        self,
        db: sqlite3.Connection,
        run: RunRecord,
        checkpoint: Checkpoint,
        transitions: Sequence[Hop],
        events: Sequence[Event],
    ) -> tuple[RunRecord, bool] | BaseException:
        """``CommitWriter.try_apply`` for a new run: a refused one (its id or key taken by another
        submission) writes nothing, so it is returned and the batch goes on."""
        try:
            return _done(self._insert_new_run(_SqliteTx(db), run, checkpoint, transitions, events))
        except IdempotencyConflictError as exc:
            return exc

    def _created(
        self,
        fut: asyncio.Future[tuple[RunRecord, bool]],
        out: tuple[RunRecord, bool] | BaseException,
    ) -> None:
        if isinstance(out, BaseException):
            if not fut.done():
                fut.set_exception(out)
            return
        self._run_created(out)  # committed: wake this process's runtimes for a claimable run
        if not fut.done():  # the caller was cancelled while waiting; its run was created
            fut.set_result(out)

    def _announce(self, token: int | None, commit: Commit, out: RunRecord | BaseException) -> None:
        """A committed run left ACTIVE and unowned is claimable: wake the runtimes here."""
        if isinstance(out, RunRecord) and wakeup.announces(token, commit, out):
            self.wakeups.notify(out.queue, out.available_at)


def _hub_key(path: str, private: int) -> str:
    """Stores of one database file share a wake-up hub; a private in-memory one has its own.
    A file is known by its device and inode (one ``stat`` of the file just opened; every path
    to it, through symlinks or hard links, names the same one), not ``os.path.realpath``'s
    ``lstat`` of each component (40 us of a fresh process's resume)."""
    if path == ":memory:":
        return f"sqlite-private:{private}"
    if path.startswith("file:"):
        return f"sqlite:{path}"
    try:
        st = os.stat(path)
    except OSError:
        return f"sqlite:{os.path.realpath(path)}"
    return f"sqlite-file:{st.st_dev}:{st.st_ino}"


_Create = tuple[
    RunRecord,
    Checkpoint,
    Sequence[Hop],
    Sequence[Event],
    "asyncio.Future[tuple[RunRecord, bool]]",
]


def _done(coro: Coroutine[Any, Any, _T]) -> _T:
    """The result of a coroutine that never suspends (``_SqliteTx``'s calls run inline): the
    shared async SQL of ``SqlStore`` run inside a group commit, on the loop's own turn."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return cast(_T, stop.value)
    coro.close()
    raise RuntimeError("a SQLite store operation suspended inside a group commit")


def _settle(fut: asyncio.Future[RunRecord], out: RunRecord | BaseException) -> None:
    if fut.done():  # the committer was cancelled while waiting; its commit still happened
        return
    if isinstance(out, BaseException):
        fut.set_exception(out)
    else:
        fut.set_result(out)
