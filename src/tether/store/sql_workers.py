"""The worker registry (``tether.store.workers``) of the SQL backends: schema v8 and its
statements, written once for SQLite and PostgreSQL (mixed into ``SqlStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.store.sql_base import Dialect, Statements
from tether.store.workers import WorkerRecord, decode_queues, encode_queues

COLUMNS = (
    "owner",
    "worker_id",
    "host",
    "pid",
    "started_at",
    "queues",
    "concurrency",
    "heartbeat_at",
    "in_flight",
    "stopped_at",
    "heartbeat_every",
)


def migration(d: Dialect) -> list[str]:
    """Schema v8: the ``workers`` table (one row per worker process, keyed by lease owner)."""
    p, r = d.prefix, d.real
    return [
        f"""CREATE TABLE {p}workers (
            owner TEXT PRIMARY KEY,
            worker_id TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at {r} NOT NULL,
            queues TEXT,
            concurrency INTEGER NOT NULL,
            heartbeat_at {r} NOT NULL,
            in_flight INTEGER NOT NULL DEFAULT 0,
            stopped_at {r},
            heartbeat_every {r} NOT NULL DEFAULT 0
        )"""
    ]


def _statements(d: Dialect) -> dict[str, str]:
    p, r = d.prefix, d.real
    cols = ", ".join(COLUMNS)
    return {
        "register": (
            f"INSERT INTO {p}workers ({cols}) VALUES (?, ?, ?, CAST(? AS INTEGER), "
            f"CAST(? AS {r}), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS {r}), "
            f"CAST(? AS INTEGER), NULL, CAST(? AS {r})) ON CONFLICT (owner) DO UPDATE SET "
            "worker_id = excluded.worker_id, host = excluded.host, pid = excluded.pid, "
            "started_at = excluded.started_at, queues = excluded.queues, "
            "concurrency = excluded.concurrency, heartbeat_at = excluded.heartbeat_at, "
            "in_flight = excluded.in_flight, stopped_at = NULL, "
            "heartbeat_every = excluded.heartbeat_every"
        ),
        "heartbeat": (
            f"UPDATE {p}workers SET heartbeat_at = CAST(? AS {r}), in_flight = CAST(? AS INTEGER) "
            "WHERE owner = ? AND stopped_at IS NULL"
        ),
        "stop": (
            f"UPDATE {p}workers SET stopped_at = CAST(? AS {r}), in_flight = 0 "
            "WHERE owner = ? AND stopped_at IS NULL"
        ),
        "list": f"SELECT {cols} FROM {p}workers ORDER BY started_at DESC, owner DESC",
        "delete": (
            f"DELETE FROM {p}workers WHERE stopped_at < CAST(? AS {r}) "
            f"OR heartbeat_at < CAST(? AS {r})"
        ),
    }


def _row(row: Sequence[Any]) -> WorkerRecord:
    owner, wid, host, pid, started, queues, conc, beat, in_flight, stopped, every = row
    return WorkerRecord(
        owner=owner,
        worker_id=wid,
        host=host,
        pid=int(pid),
        started_at=float(started),
        queues=decode_queues(queues),
        concurrency=int(conc),
        heartbeat_at=float(beat),
        in_flight=int(in_flight),
        stopped_at=None if stopped is None else float(stopped),
        heartbeat_every=float(every),
    )


def heartbeat_sql(sql: Statements) -> str:
    """The one statement of a worker's heartbeat: (now, in_flight, owner)."""
    d = sql.dialect
    return sql.memoized(("workers", "heartbeat"), lambda: _statements(d)["heartbeat"])


class SqlWorkers:
    """``WorkerRegistry`` over a ``SqlStore``'s single-statement access."""

    clock: Clock
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _worker_sql(self, name: str) -> str:
        d = self._sql.dialect
        return self._sql.memoized(("workers", name), lambda: _statements(d)[name])

    async def register_worker(self, worker: WorkerRecord) -> None:
        w = worker
        params = (
            w.owner,
            w.worker_id,
            w.host,
            w.pid,
            w.started_at,
            encode_queues(w.queues),
            w.concurrency,
            self.clock.now(),
            w.in_flight,
            w.heartbeat_every,
        )
        await self._execute(self._worker_sql("register"), params)

    async def heartbeat_worker(self, owner: str, in_flight: int) -> bool:
        sql = self._worker_sql("heartbeat")
        return await self._execute(sql, (self.clock.now(), in_flight, owner)) > 0

    async def stop_worker(self, owner: str) -> None:
        await self._execute(self._worker_sql("stop"), (self.clock.now(), owner))

    async def list_workers(self) -> list[WorkerRecord]:
        return [_row(r) for r in await self._fetch(self._worker_sql("list"), ())]

    async def delete_workers(self, before: float) -> int:
        return await self._execute(self._worker_sql("delete"), (before, before))
