"""The worker registry: each ``tether worker`` process records itself and heartbeats a row.

A row names the worker by its lease owner string (``Runtime.owner``: worker id and process
incarnation), with the host, pid, start time, the queues it serves (None: every queue), its
concurrency limit, the runs it executes now and when it last beat. Operators list it
(``tether workers list``); other workers read it to find a worker that died without a trace
(its heartbeat row is stale and it never marked itself stopped) and take over its leases at
once instead of waiting for them to expire.

One heartbeat is one single-row UPDATE, batched with nothing else. ``MemoryWorkers`` is the
in-memory implementation; the SQL backends share ``tether.store.sql_workers``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tether.core.clock import Clock


@dataclass(slots=True)
class WorkerRecord:
    owner: str
    """The lease owner string the worker's runtime holds leases under (primary key)."""
    worker_id: str
    host: str
    pid: int
    started_at: float
    queues: list[str] | None = None
    """The queues it serves; None: every queue."""
    concurrency: int = 1
    heartbeat_at: float = 0.0
    in_flight: int = 0
    stopped_at: float | None = None
    """When it stopped (deregistered); None while it runs (or after it died unannounced)."""
    heartbeat_every: float = 0.0
    """Seconds between two of its heartbeats (0: not recorded)."""


@runtime_checkable
class WorkerRegistry(Protocol):
    async def register_worker(self, worker: WorkerRecord) -> None:
        """Insert (or replace) the worker's row; its heartbeat is stamped now."""
        ...

    async def heartbeat_worker(self, owner: str, in_flight: int) -> bool:
        """Stamp the worker's heartbeat now with its runs in flight, in one statement.
        Returns False when the row is gone or marked stopped (nothing is written)."""
        ...

    async def stop_worker(self, owner: str) -> None:
        """Mark the worker stopped now (a clean shutdown); its runs in flight go to 0."""
        ...

    async def list_workers(self) -> list[WorkerRecord]:
        """Every registered worker, most recently started first."""
        ...

    async def delete_workers(self, before: float) -> int:
        """Delete the rows of workers stopped, or last heard from, before ``before``."""
        ...


def worker_state(w: WorkerRecord, now: float) -> str:
    """``running``, ``stopped``, or ``silent``: unheard of for two of its heartbeat intervals
    (60 s when it recorded none), its runs taken over."""
    if w.stopped_at is not None:
        return "stopped"
    limit = 2 * w.heartbeat_every if w.heartbeat_every > 0 else 60.0
    return "running" if now - w.heartbeat_at <= limit else "silent"


def stale_owners(
    workers: Sequence[WorkerRecord], now: float, stale_after: float, *, exclude: str = ""
) -> list[str]:
    """Owners of workers that are not stopped and have been silent, at ``now``, for longer
    than ``stale_after`` seconds and than two of their own heartbeat intervals (a worker that
    beats slowly is never judged by a faster one's clock): they died without deregistering
    (pure)."""
    return sorted(
        w.owner
        for w in workers
        if w.stopped_at is None
        and now - w.heartbeat_at > max(stale_after, 2 * w.heartbeat_every)
        and w.owner != exclude
    )


def encode_queues(queues: Sequence[str] | None) -> str | None:
    return None if queues is None else ",".join(queues)


def decode_queues(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [q for q in raw.split(",") if q]


class MemoryWorkers:
    """``WorkerRegistry`` in a dict (mixed into ``MemoryStore``)."""

    clock: Clock
    _worker_rows: dict[str, WorkerRecord]

    def _workers(self) -> dict[str, WorkerRecord]:
        try:
            return self._worker_rows
        except AttributeError:
            self._worker_rows = {}
            return self._worker_rows

    async def register_worker(self, worker: WorkerRecord) -> None:
        row = dataclasses.replace(worker, heartbeat_at=self.clock.now(), stopped_at=None)
        row.queues = None if worker.queues is None else list(worker.queues)
        self._workers()[worker.owner] = row

    async def heartbeat_worker(self, owner: str, in_flight: int) -> bool:
        row = self._workers().get(owner)
        if row is None or row.stopped_at is not None:
            return False
        row.heartbeat_at, row.in_flight = self.clock.now(), in_flight
        return True

    async def stop_worker(self, owner: str) -> None:
        row = self._workers().get(owner)
        if row is not None:
            row.stopped_at, row.in_flight = self.clock.now(), 0

    async def list_workers(self) -> list[WorkerRecord]:
        rows = sorted(self._workers().values(), key=lambda w: (w.started_at, w.owner))
        return [dataclasses.replace(w) for w in reversed(rows)]

    async def delete_workers(self, before: float) -> int:
        rows = self._workers()
        gone = [
            o
            for o, w in rows.items()
            if (w.stopped_at is not None and w.stopped_at < before) or w.heartbeat_at < before
        ]
        for owner in gone:
            del rows[owner]
        return len(gone)


@runtime_checkable
class BlockingWorkerBeat(Protocol):
    """A worker heartbeat on a connection of its own, for a thread (``SqlLeaseRenewer``)."""

    def heartbeat_worker(self, owner: str, in_flight: int) -> bool: ...

    def close(self) -> None: ...
