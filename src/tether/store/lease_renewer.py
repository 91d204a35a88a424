"""Blocking lease renewal on a connection of its own, for a runtime's heartbeat thread.

The same statements as ``SqlStore.renew_leases``, sent through a plain DB-API connection
(``sqlite3`` or psycopg's blocking one) that only the heartbeat thread uses: renewal never waits
for the event loop, whatever the nodes on it do. A failed call drops the connection; the next
call reconnects (at once, within the same call, when the old connection was dropped by a
server restart since the last round).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tether.core.clock import Clock
from tether.store.sql_base import Statements
from tether.store.sql_store import renew_batches
from tether.store.sql_workers import heartbeat_sql
from tether.store.transient import is_transient


class DbApiConnection(Protocol):
    """What a renewer needs of ``sqlite3.Connection`` and ``psycopg.Connection``."""

    def execute(self, sql: str, params: Any = ...) -> Any: ...

    def close(self) -> None: ...


class SqlLeaseRenewer:
    """A ``LeaseRenewer`` over ``connect()``; one thread at a time."""

    def __init__(
        self, connect: Callable[[], DbApiConnection], statements: Statements, clock: Clock
    ) -> None:
        self._connect = connect
        self._sql = statements
        self.clock = clock
        self._conn: DbApiConnection | None = None

    def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        if not leases:
            return set()
        reused = self._conn is not None
        try:
            return self._renew(owner, leases, ttl)
        except Exception as exc:
            if not (reused and is_transient(exc)):
                raise
        # the connection died with a server restart since the last round: one more try, now
        return self._renew(owner, leases, ttl)

    def _renew(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        if self._conn is None:
            self._conn = self._connect()
        renewed: set[str] = set()
        try:
            for sql, params in renew_batches(self._sql, owner, leases, self.clock.now() + ttl):
                renewed.update(r[0] for r in self._conn.execute(sql, params).fetchall())
        except BaseException:
            self.close()
            raise
        return set(leases) - renewed

    def heartbeat_worker(self, owner: str, in_flight: int) -> bool:
        """``WorkerRegistry.heartbeat_worker``, blocking, on this connection (a worker's
        registry heartbeat from a thread: a busy event loop cannot make it look dead)."""
        if self._conn is None:
            self._conn = self._connect()
        try:
            cur = self._conn.execute(heartbeat_sql(self._sql), (self.clock.now(), in_flight, owner))
        except BaseException:
            self.close()
            raise
        return int(cur.rowcount) > 0

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
