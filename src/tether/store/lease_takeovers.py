"""Lease takeovers, counted where they are recorded: each run's ``lease_takeover`` events.

When a runtime claims a run whose owner's lease expired, or whose owner was found dead
(``claim_runs`` says whose lease it took: ``Lease.previous_owner``), it records a
``lease_takeover`` event on the run: ``{"from": old owner, "to": new owner, "token": new lease
token, "why": "expired" | "dead"}`` (``tether.graph.takeover``). ``count_takeovers`` counts
them across the store, whichever process made them, so ``/metrics`` can report
``tether_lease_takeovers_total`` from any server. The SQL backends read a partial index of
those events only (schema v18); the count goes down when runs are purged with their events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tether.store.memory_kept import KeptEvent
from tether.store.sql_base import Dialect, Statements

TAKEOVER_EVENT = "lease_takeover"


@runtime_checkable
class LeaseTakeovers(Protocol):
    async def count_takeovers(self) -> int:
        """How many ``lease_takeover`` events the store holds (every run, every tenant)."""
        ...


class MemoryLeaseTakeovers:
    """``LeaseTakeovers`` of ``MemoryStore`` (mixed in)."""

    _events: dict[str, list[KeptEvent]]

    async def count_takeovers(self) -> int:
        return sum(1 for evs in self._events.values() for e in evs if e.type == TAKEOVER_EVENT)


def migration(d: Dialect) -> list[str]:
    """Schema v18: a partial index of the takeover events (nothing to write for the others)."""
    return [
        f"CREATE INDEX tether_events_takeovers ON {d.prefix}events (run_id) "
        f"WHERE type = '{TAKEOVER_EVENT}'"
    ]


def count_sql(prefix: str) -> str:
    """The count, read from the partial index alone."""
    return f"SELECT COUNT(*) FROM {prefix}events WHERE type = '{TAKEOVER_EVENT}'"


class SqlLeaseTakeovers:
    """``LeaseTakeovers`` of the SQL backends (mixed into ``SqlStore``)."""

    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    async def count_takeovers(self) -> int:
        p = self._sql.dialect.prefix
        sql = self._sql.memoized(("count_takeovers",), lambda: count_sql(p))
        rows = await self._fetch(sql, ())
        return int(rows[0][0]) if rows else 0
