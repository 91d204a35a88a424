"""A minimal async connection pool for the Postgres store's hot path.

psycopg_pool's checkout costs ~170 µs a call on loopback (more than the query itself); tether's
per-step budget is 300 µs. This pool is a LIFO stack of idle autocommit connections bounded by a
semaphore: an uncontended checkout never yields to the event loop. A connection that comes back
broken, closed, or inside a transaction is discarded, never reused.

It also rides out outages (``transient``): ``run`` retries an operation whose connection could not
be had or was dropped, on a fresh one; ``transaction`` retries getting a connection and ``BEGIN``
(nothing of the transaction was sent yet). A transient failure empties the idle stack: after a
server restart every idle connection is dead, and the next checkouts connect afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from tether.store.transient import NO_RETRY, OutageLog, Retry, StoreRetry, is_transient

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")


class ConnectionPool:
    def __init__(
        self,
        dsn: str,
        *,
        max_size: int,
        connect_timeout: float,
        synchronous_commit: bool = True,
        retry: StoreRetry = NO_RETRY,
        outage: OutageLog | None = None,
    ) -> None:
        self.dsn = dsn
        self.retry = retry
        self.outage = outage
        self.synchronous_commit = synchronous_commit
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._idle: list[Conn] = []
        self._slots = asyncio.Semaphore(max_size)
        self._closed = False

    async def _connect(self) -> Conn:
        conn = await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
        )
        if not self.synchronous_commit:
            await conn.execute("SET synchronous_commit = off")
        return conn

    async def open(self) -> None:
        """Connect once eagerly so a bad DSN fails at setup, not at the first step."""
        async with self.connection():
            pass

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        if self._closed:
            raise psycopg.OperationalError("the tether connection pool is closed")
        await self._slots.acquire()
        conn: Conn | None = None
        try:
            conn = self._idle.pop() if self._idle else await self._connect()
            yield conn
        finally:
            if conn is not None:
                reusable = (
                    not self._closed
                    and not conn.closed
                    and not conn.broken
                    and conn.info.transaction_status == TransactionStatus.IDLE
                )
                if reusable:
                    self._idle.append(conn)
                else:
                    with contextlib.suppress(Exception):
                        await conn.close()
            self._slots.release()

    @property
    def closed(self) -> bool:
        return self._closed

    async def retry_after(self, retry: Retry | None, exc: Exception) -> Retry | None:
        """After a failed attempt: the Retry to go on with (its backoff slept), or None when
        ``exc`` must be raised (not transient, the policy gave up, the pool is closed)."""
        if self._closed or not is_transient(exc):
            return None
        self.discard_idle()  # a dropped connection means the idle ones are dead too
        retry = retry or self.retry.start(self.outage)
        return retry if await retry.pause(exc) else None

    def answered(self, started: float) -> None:
        """An operation ``started`` at that ``time.monotonic()`` succeeded: the end of an
        outage, if there was one (and the operation began after it)."""
        if self.outage is not None and self.outage.down_since is not None:
            self.outage.up(started)

    async def run(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        """``op`` on a connection, retried in place while the server is unreachable. Only for
        statements that are safe to send twice (reads, fenced or idempotent writes)."""
        retry: Retry | None = None
        while True:
            started = time.monotonic()
            try:
                async with self.connection() as conn:
                    out = await op(conn)
            except Exception as exc:
                retry = await self.retry_after(retry, exc)
                if retry is None:
                    raise
                continue
            self.answered(started)
            return out

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A connection inside a transaction; a failure inside it is raised, not retried."""
        retry: Retry | None = None
        while True:
            started = time.monotonic()
            stack = contextlib.AsyncExitStack()
            try:
                conn = await stack.enter_async_context(self.connection())
                await stack.enter_async_context(conn.transaction())
            except Exception as exc:
                await stack.aclose()
                retry = await self.retry_after(retry, exc)
                if retry is None:
                    raise
                continue
            break
        async with stack:
            yield conn
        self.answered(started)

    def discard_idle(self) -> None:
        """Forget every idle connection: after the server dropped one (a restart), the others
        are dead too; the next checkouts connect afresh instead of failing one by one."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()  # closes the socket without a round trip

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()
