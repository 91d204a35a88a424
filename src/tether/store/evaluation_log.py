"""The evaluation log of a store (schema v17): the shadow log of shadow-mode model calls and the
flags an evaluation puts on runs (semantic drift), with the ``EvaluationLogStore`` protocol the
memory, SQLite and PostgreSQL backends implement (``tether.testing.store_conformance_evaluation``).

Rows are written outside a run's commit on purpose: a shadow model answers after the live call
returned (often after its step committed), and a drift check may look at a finished run. So a
row is keyed by what makes it unique (``(run_id, call_key)``, ``(run_id, kind, key)``) and a
second write of the same row (a node re-run after a crash) changes nothing (shadow) or replaces
the first (a flag re-checked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from tether.store.kpi_totals import RunTotals

KPI_BATCH = 256
"""Runs one ``kpi_totals`` call may ask about."""


def to_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def from_json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


@dataclass(slots=True)
class ShadowRow:
    """One shadowed model call: what the live model decided, what the shadow model would have,
    and how far apart the two decisions are (0 the same, 1 unrelated)."""

    run_id: str
    """The run the live call was made in (``""`` outside a run)."""
    call_key: str
    workflow: str
    ts: float
    live_model: str
    shadow_model: str
    live: Mapping[str, Any]
    """The live decision: ``{"text", "tool_calls": [{"name", "arguments"}]}``."""
    shadow: Mapping[str, Any] | None = None
    """The shadow decision, same shape; None when the shadow call failed."""
    distance: float | None = None
    tool_agrees: bool | None = None
    """Both chose the same tools (as multisets); None when the shadow call failed."""
    error: str | None = None


@dataclass(slots=True)
class ShadowTotals:
    """A workflow's shadow log, summed (``shadow_totals``)."""

    samples: int = 0
    """Shadowed calls, failed ones included."""
    failed: int = 0
    compared: int = 0
    """Calls with a distance (the shadow answered)."""
    distance_sum: float = 0.0
    max_distance: float = 0.0
    above: int = 0
    """Compared calls whose distance is above the threshold asked about."""
    tool_mismatches: int = 0
    p95_distance: float | None = None
    """Nearest-rank 95th percentile of the distances (None: nothing compared)."""


@dataclass(slots=True)
class FlagRow:
    """A flag an evaluation put on a run, e.g. ``kind="drift.goal_output"`` with the score that
    fell under ``threshold``."""

    run_id: str
    kind: str
    key: str
    workflow: str
    ts: float
    score: float
    threshold: float
    data: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class EvaluationLogStore(Protocol):
    async def put_shadow(self, row: ShadowRow) -> bool:
        """Insert the row unless ``(run_id, call_key)`` is there; True when inserted."""
        ...

    async def list_shadow(
        self,
        workflow: str | None = None,
        *,
        run_id: str | None = None,
        since: float | None = None,
        after: tuple[float, str, str] | None = None,
        limit: int = 100,
    ) -> list[ShadowRow]:
        """Oldest first by ``(ts, run_id, call_key)``; ``after`` is the last row's triple."""
        ...

    async def shadow_totals(
        self, workflow: str, *, threshold: float, since: float | None = None
    ) -> ShadowTotals: ...

    async def put_flag(self, row: FlagRow) -> None:
        """Insert, or replace the flag of the same ``(run_id, kind, key)``."""
        ...

    async def list_flags(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[FlagRow]:
        """Oldest first by ``(ts, run_id, kind, key)``."""
        ...

    async def kpi_totals(self, run_ids: Sequence[str]) -> dict[str, RunTotals]:
        """The KPI sums of these runs (``store.kpi_totals``), one entry per run that has
        transitions or model calls; at most ``KPI_BATCH`` runs a call."""
        ...


def p95_rank(n: int) -> int:
    """The 1-based nearest rank of the 95th percentile among ``n`` sorted values."""
    return max(1, -(-95 * n // 100))
