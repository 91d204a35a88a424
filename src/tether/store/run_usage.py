"""Usage of a page of runs at once: ``RunUsageTotals.runs_usage(run_ids)``.

A runs list shows each run's tokens and cost; reading each run's usage apart costs a query per
run. ``runs_usage`` sums, for many runs in one query, what ``GET /v1/runs/{id}`` reports for
one: the ``model_call`` events (calls; input and output tokens and cost by the rules of
``store.usage``: JSON numbers only, tokens truncated) and the tool calls journaled as effects
(``kind = 'tool'``). A run without any has no entry.

``MemoryRunUsage`` is the in-memory implementation; ``runs_usage_sql`` the SQL of the SQLite
and PostgreSQL backends (``tether.store.sql_run_usage``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tether.store.memory_kept import KeptEvent
from tether.store.sql_base import Dialect
from tether.store.sql_json import JsonFields
from tether.store.types import EffectRecord, Event
from tether.store.usage import MODEL_CALL, sum_model_calls

TOOL_EFFECT = "tool"


@dataclass(slots=True, frozen=True)
class RunUsage:
    """One run's model calls, tokens, cost and tool calls."""

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    tool_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
        }


@runtime_checkable
class RunUsageTotals(Protocol):
    async def runs_usage(self, run_ids: Sequence[str]) -> dict[str, RunUsage]:
        """``{run_id: usage}`` of the runs among ``run_ids`` that made a model or tool call
        (one query; unknown ids are left out, not an error)."""
        ...


def usage_of(events: Iterable[Event], effects: Iterable[EffectRecord]) -> RunUsage | None:
    """A run's usage from its events and effects (pure; None: no call at all)."""
    totals = sum_model_calls(e.data for e in events if e.type == MODEL_CALL)
    tools = sum(1 for e in effects if e.kind == TOOL_EFFECT)
    if not totals and not tools:
        return None
    return RunUsage(
        model_calls=sum(t.calls for t in totals),
        input_tokens=sum(t.input_tokens for t in totals),
        output_tokens=sum(t.output_tokens for t in totals),
        cost=sum(t.cost for t in totals),
        tool_calls=tools,
    )


class MemoryRunUsage:
    """``RunUsageTotals`` of ``MemoryStore`` (mixed in)."""

    _events: dict[str, list[KeptEvent]]
    _effects: dict[str, dict[str, EffectRecord]]

    async def runs_usage(self, run_ids: Sequence[str]) -> dict[str, RunUsage]:
        out: dict[str, RunUsage] = {}
        for run_id in dict.fromkeys(run_ids):
            calls = [e.event(run_id) for e in self._events.get(run_id, ()) if e.type == MODEL_CALL]
            used = usage_of(calls, self._effects.get(run_id, {}).values())
            if used is not None:
                out[run_id] = used
        return out


def migration(d: Dialect) -> list[str]:
    """Schema v18 (with ``lease_takeovers``): a partial index of the ``model_call`` events, so
    summing a page of runs reads their model calls, not every event they have."""
    return [
        f"CREATE INDEX tether_events_model_calls ON {d.prefix}events (run_id) "
        f"WHERE type = '{MODEL_CALL}'"
    ]


def runs_usage_sql(dialect: str, prefix: str, n: int) -> str:
    """Per run among ``n`` ids (given twice: events, then effects): model calls, input and
    output tokens, cost, tool calls; for ``dialect`` ``"sqlite"`` or ``"postgres"``."""
    js = JsonFields(dialect)
    events = f"{prefix}events"
    if dialect != "postgres":
        # without statistics SQLite would read every event of the runs by the primary key
        events += " INDEXED BY tether_events_model_calls"
    ids = ", ".join(["?"] * n)
    return (
        f"SELECT run_id, SUM(calls), {js.total('tin')}, {js.total('tout')}, "
        f"{js.total('cost')}, SUM(tools) FROM ("
        f"SELECT run_id, 1 AS calls, {js.whole('input_tokens')} AS tin, "
        f"{js.whole('output_tokens')} AS tout, {js.num('cost')} AS cost, 0 AS tools "
        f"FROM (SELECT run_id, {js.doc} AS d FROM {events} "
        f"WHERE run_id IN ({ids}) AND type = '{MODEL_CALL}') AS e "
        f"UNION ALL SELECT run_id, 0, 0, 0, {js.zero}, 1 FROM {prefix}effects "
        f"WHERE run_id IN ({ids}) AND kind = '{TOOL_EFFECT}') AS u GROUP BY run_id"
    )


def row_to_usage(row: Sequence[Any]) -> tuple[str, RunUsage]:
    return str(row[0]), RunUsage(int(row[1]), int(row[2]), int(row[3]), float(row[4]), int(row[5]))
