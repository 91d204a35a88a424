"""Limits shared by every worker of a store, and what the queues hold (``queue_stats``).

A limit names a ``kind`` (``"queue"``, ``"workflow"`` or ``"tenant"``) and a ``key`` (the
queue, workflow or tenant name) and caps:

* ``max_running``: how many of its runs may be executing at once across all workers (ACTIVE
  runs under a live lease). Claims enforce it inside the claiming statement, serialised by a
  lock while any limit exists, so N workers never exceed it together. Runs started with
  ``start(execute=True)`` run at once in the caller's process and count, but are not refused.
* ``max_depth`` (queues only): how many ACTIVE runs (waiting, delayed or running) the queue may
  hold; ``submit`` refuses one more with ``QueueFullError`` (backpressure). Concurrent submits
  in several processes may overshoot it by the submits in flight.

Stores read the limits table at most once per ``LIMITS_TTL`` seconds (and at once after a
change through themselves): a limit set in another process applies within that time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tether.core.clock import Clock
from tether.core.errors import InvalidInputError, QueueFullError
from tether.core.lifecycle import ACTIVE
from tether.core.tenants import check_tenant_name
from tether.store.types import RunRecord

KINDS = ("queue", "workflow", "tenant")
LIMITS_TTL = 1.0
"""Seconds a store trusts its copy of the limits table."""


@dataclass(slots=True, frozen=True)
class QueueLimit:
    kind: str
    """``"queue"``, ``"workflow"`` or ``"tenant"``."""
    key: str
    max_running: int | None = None
    max_depth: int | None = None


@dataclass(slots=True)
class QueueStats:
    """What one queue holds now (ACTIVE runs only)."""

    queue: str
    waiting: int = 0
    """Claimable now: nobody executes them and their ``available_at`` has come."""
    delayed: int = 0
    """Nobody executes them and their ``available_at`` is still to come."""
    running: int = 0
    """Under a live lease."""
    oldest_waiting_at: float | None = None
    """``created_at`` of the oldest waiting run (None: none waits)."""

    @property
    def depth(self) -> int:
        """Every ACTIVE run of the queue: what ``max_depth`` caps."""
        return self.waiting + self.delayed + self.running

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest waiting run has waited (0 when none waits)."""
        return 0.0 if self.oldest_waiting_at is None else max(0.0, now - self.oldest_waiting_at)


MAX_LIMIT = 2**31 - 1
"""The largest limit every store keeps (PostgreSQL's integer)."""


def check_limit(kind: str, key: str, max_running: int | None, max_depth: int | None) -> QueueLimit:
    """A valid limit, or InvalidInputError saying what to pass."""
    if kind not in KINDS:
        raise InvalidInputError(f"limit kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"a {kind} limit needs the {kind}'s name, got {key!r}")
    if max_running is not None or max_depth is not None:  # (removing is always fine)
        if kind == "tenant":
            check_tenant_name(key)  # "acme " would limit no run of acme
        elif kind == "queue" and (key.strip() != key or not key.isprintable()):
            raise InvalidInputError(  # "billing " would limit no run of billing
                f"a queue name has no space at either end and no control character, got {key!r}"
            )
    for name, value in (("max_running", max_running), ("max_depth", max_depth)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT
        ):
            raise InvalidInputError(
                f"{name} must be an int from 0 to {MAX_LIMIT} or None (no limit), got {value!r}"
            )
    if max_depth is not None and kind != "queue":
        raise InvalidInputError(
            f"max_depth caps a queue's backlog; a {kind} limit takes max_running only"
        )
    return QueueLimit(kind, key, max_running, max_depth)


@runtime_checkable
class QueueControl(Protocol):
    """Shared limits and queue statistics (every built-in store)."""

    async def set_queue_limit(
        self,
        kind: str,
        key: str,
        *,
        max_running: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        """Set (or, with both None, remove) the limit of one queue, workflow or tenant."""
        ...

    async def queue_limits(self) -> list[QueueLimit]:
        """Every limit, by kind then key."""
        ...

    async def queue_stats(self) -> list[QueueStats]:
        """One entry per queue holding ACTIVE runs, by queue name."""
        ...

    async def check_queue_room(self, queue: str) -> None:
        """Raise QueueFullError when ``queue`` is at its depth limit."""
        ...


class MemoryQueueLimits:
    """``QueueControl`` of the in-memory store (mixed into ``MemoryStore``)."""

    clock: Clock
    _runs: dict[str, RunRecord]

    @property
    def _limit_table(self) -> dict[tuple[str, str], QueueLimit]:
        table: dict[tuple[str, str], QueueLimit] | None = getattr(self, "_limits_by_key", None)
        if table is None:
            table = {}
            self._limits_by_key = table
        return table

    async def set_queue_limit(
        self,
        kind: str,
        key: str,
        *,
        max_running: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        lim = check_limit(kind, key, max_running, max_depth)
        if max_running is None and max_depth is None:
            self._limit_table.pop((kind, key), None)
        else:
            self._limit_table[(kind, key)] = lim

    async def queue_limits(self) -> list[QueueLimit]:
        return [self._limit_table[k] for k in sorted(self._limit_table)]

    async def queue_stats(self) -> list[QueueStats]:
        now = self.clock.now()
        stats: dict[str, QueueStats] = {}
        for run in self._runs.values():
            if run.status not in ACTIVE:
                continue
            st = stats.setdefault(run.queue, QueueStats(run.queue))
            if run.owner is not None and run.lease_expires_at > now:
                st.running += 1
            elif run.available_at > now:
                st.delayed += 1
            else:
                st.waiting += 1
                if st.oldest_waiting_at is None or run.created_at < st.oldest_waiting_at:
                    st.oldest_waiting_at = run.created_at
        return [stats[q] for q in sorted(stats)]

    async def check_queue_room(self, queue: str) -> None:
        lim = self._limit_table.get(("queue", queue))
        if lim is None or lim.max_depth is None:
            return
        depth = sum(1 for r in self._runs.values() if r.status in ACTIVE and r.queue == queue)
        if depth >= lim.max_depth:
            raise QueueFullError(queue, depth, lim.max_depth)

    def _admit(
        self, candidates: list[RunRecord], limit: int, dead: Collection[str]
    ) -> list[RunRecord]:
        """The first ``limit`` candidates (in claim order) that every limit has room for."""
        now = self.clock.now()
        rooms = {
            k: v.max_running for k, v in self._limit_table.items() if v.max_running is not None
        }
        if rooms:
            for run in self._runs.values():
                live = (
                    run.owner is not None and run.lease_expires_at > now and run.owner not in dead
                )
                if run.status in ACTIVE and live:
                    for k in _keys(run):
                        if k in rooms:
                            rooms[k] -= 1
        out: list[RunRecord] = []
        for run in candidates:
            if len(out) >= limit:
                break
            keys = [k for k in _keys(run) if k in rooms]
            if any(rooms[k] <= 0 for k in keys):
                continue
            for k in keys:
                rooms[k] -= 1
            out.append(run)
        return out


def _keys(run: RunRecord) -> list[tuple[str, str]]:
    keys = [("queue", run.queue), ("workflow", run.workflow)]
    if run.tenant is not None:
        keys.append(("tenant", run.tenant))
    return keys
