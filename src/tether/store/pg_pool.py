"""A minimal async connection pool for the Postgres store's hot path.

psycopg_pool's checkout costs ~170 µs a call on loopback (more than the query itself); tether's
per-step budget is 300 µs. This pool is a LIFO stack of idle autocommit connections bounded by a
semaphore: an uncontended checkout never yields to the event loop. A connection that comes back
broken, closed, or inside a transaction is discarded, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

Conn = psycopg.AsyncConnection[Any]


class ConnectionPool:
    def __init__(
        self, dsn: str, *, max_size: int, connect_timeout: float, synchronous_commit: bool = True
    ) -> None:
        self.dsn = dsn
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
