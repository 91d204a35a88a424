"""One SQLite connection for the SQLite memory backend, used from the event loop and one
helper thread, never both at once.

Short statements (a search's lookups, a KG query, an access-count update) run inline on the
event loop, like the run store's: they take well under a millisecond, and a hop to a thread
costs more than that on a loaded machine. Long work (embedding-index inserts of a batch,
opening, rebuilding or saving the index) runs on the backend's own thread (``call``). Every use
holds ``lock`` (an asyncio lock), so a thread's transaction and an inline statement never
interleave on the connection. Transactions are ``BEGIN IMMEDIATE`` (the write lock taken up
front, so two processes never deadlock upgrading a read).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tether.core.errors import StoreError

T = TypeVar("T")


def connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    if path != ":memory:":
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or (
                    time.monotonic() >= deadline
                ):
                    raise
                time.sleep(0.01)  # only at open, while another process switches the file
        db.execute("PRAGMA synchronous = NORMAL")
    return db


class SqliteThread:
    """The connection and the thread it lives on."""

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-memory")
        self._db: sqlite3.Connection | None = None
        self.lock = asyncio.Lock()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the SQLite memory store is not open (call setup() first)")
        return self._db

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the database thread."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(self.db))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite memory store {self.path!r}: {exc}") from exc

    def now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` right here (the caller holds ``lock``)."""
        try:
            return fn(self.db)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite memory store {self.path!r}: {exc}") from exc

    async def open(self) -> None:
        if self._db is None:
            loop = asyncio.get_running_loop()
            self._db = await loop.run_in_executor(self._pool, connect, self.path, self.busy_timeout)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._pool, db.close)
        self._pool.shutdown(wait=False)

    @contextlib.asynccontextmanager
    async def transaction(
        self, write: bool = True, *, snapshot: bool = False
    ) -> AsyncIterator[SqliteTx]:
        """``write``: ``BEGIN IMMEDIATE``. A read (``write=False``) runs its statements on
        their own, each its own snapshot, unless ``snapshot``: then they share one (a deferred
        ``BEGIN``, whose first read fixes what every later one sees, whatever another
        connection commits meanwhile)."""
        begin = "BEGIN IMMEDIATE" if write else "BEGIN" if snapshot else None
        async with self.lock:
            if begin is not None:
                self.now(lambda db: db.execute(begin))
            try:
                yield SqliteTx(self)
            except BaseException:
                if begin is not None:
                    with contextlib.suppress(StoreError):
                        self.now(lambda db: db.execute("ROLLBACK"))
                raise
            if begin is not None:
                self.now(lambda db: db.execute("COMMIT"))

    def begin(self, lock: str | None) -> contextlib.AbstractAsyncContextManager[SqliteTx]:
        """For the knowledge graph: a write transaction when a lock is named, else a read that
        sees one snapshot (a multi-hop walk's levels never mix two versions of the graph)."""
        return self.transaction(write=lock is not None, snapshot=True)


class SqliteTx:
    def __init__(self, owner: SqliteThread) -> None:
        self._owner = owner

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._owner.now(lambda db: db.execute(sql, tuple(params)).fetchall())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._owner.now(lambda db: int(db.execute(sql, tuple(params)).rowcount))
