"""The sums the KPIs need of many runs at once (``EvaluationLogStore.kpi_totals``): model calls,
tokens and cost from their ``model_call`` events (the rules of ``store.usage``), and from their
lifecycle transitions the escalations, the validations (transitions out of VALIDATING other than
to CANCELLED) and the failed ones (to EXECUTING, ESCALATED or FAILED), the first and last
transition times and the seconds spent in each state (from a transition into it to the next).

The SQL backends answer a page of runs with three aggregate statements (``LEAD`` over each
run's transitions for the phases); the memory store adds the same in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from tether.core.lifecycle import RunStatus
from tether.store.types import Transition
from tether.store.usage import MODEL_CALL, ModelCallTotals

VALIDATING = RunStatus.VALIDATING.value
FAILED_VALIDATION = (
    RunStatus.EXECUTING.value,
    RunStatus.ESCALATED.value,
    RunStatus.FAILED.value,
)
ESCALATED = RunStatus.ESCALATED.value
CANCELLED = RunStatus.CANCELLED.value
TOOL_CALL = "tool_call"
ARGUMENTS_ERROR = "ToolArgumentsError"


@dataclass(slots=True)
class RunTotals:
    run_id: str
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    escalations: int = 0
    validations: int = 0
    validation_failures: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    tool_events: int = 0
    """``tool_call`` events: every tool call the executor answered, refused ones included."""
    tool_argument_errors: int = 0
    """Of those, calls refused because their arguments did not validate."""


def python_totals(
    run_id: str,
    transitions: Sequence[Transition],
    usage: Iterable[ModelCallTotals],
    tool_calls: Iterable[Mapping[str, Any]] = (),
) -> RunTotals:
    """``RunTotals`` from a run's transitions, its ``model_usage`` and the data of its
    ``tool_call`` events."""
    out = RunTotals(run_id)
    for data in tool_calls:
        out.tool_events += 1
        out.tool_argument_errors += data.get("error") == ARGUMENTS_ERROR
    for u in usage:
        out.model_calls += u.calls
        out.input_tokens += u.input_tokens
        out.output_tokens += u.output_tokens
        out.cost += u.cost
    ts = sorted(transitions, key=lambda t: t.seq)
    for t in ts:
        out.escalations += t.dst.value == ESCALATED
        if t.src is not None and t.src.value == VALIDATING and t.dst.value != CANCELLED:
            out.validations += 1
            out.validation_failures += t.dst.value in FAILED_VALIDATION
    for cur, nxt in pairwise(ts):
        phase = cur.dst.value
        out.phase_seconds[phase] = out.phase_seconds.get(phase, 0.0) + max(0.0, nxt.ts - cur.ts)
    if ts:
        out.first_ts, out.last_ts = ts[0].ts, ts[-1].ts
    return out


def _in(n: int) -> str:
    return f"run_id IN ({', '.join(['?'] * n)})"


def usage_sql(dialect: str, prefix: str, n: int) -> str:
    """Per run: model calls, input and output tokens (numbers, truncated), cost (numbers), tool
    calls and tool calls refused for their arguments.

    The sums cannot overflow, whatever a provider reported: PostgreSQL adds ``numeric`` (a
    ``bigint`` or ``float8`` sum past its range is an error there), SQLite ``TOTAL`` (its
    ``SUM`` of integers past 2^63 is an error); a cost beyond a float reads as infinite."""
    if dialect == "postgres":
        doc = "convert_from(data, 'UTF8')::jsonb"
        error = "d ->> 'error'"

        def num(key: str) -> str:
            return (
                f"CASE WHEN jsonb_typeof(d -> '{key}') = 'number' "
                f"THEN (d -> '{key}')::text::numeric END"
            )

        def whole(key: str) -> str:
            return f"trunc({num(key)})"

        total = "SUM"
    else:
        doc = "CAST(data AS TEXT)"
        error = "json_extract(d, '$.error')"

        def num(key: str) -> str:
            return (
                f"CASE WHEN json_type(d, '$.{key}') IN ('integer', 'real') "
                f"THEN json_extract(d, '$.{key}') END"
            )

        def whole(key: str) -> str:
            return f"CAST({num(key)} AS INTEGER)"

        total = "TOTAL"

    model = f"type = '{MODEL_CALL}'"

    def of_model(expr: str) -> str:
        return f"COALESCE({total}(CASE WHEN {model} THEN {expr} END), 0)"

    return (
        f"SELECT run_id, COUNT(CASE WHEN {model} THEN 1 END), "
        f"{of_model(whole('input_tokens'))}, {of_model(whole('output_tokens'))}, "
        f"{of_model(num('cost'))}, COUNT(CASE WHEN type = '{TOOL_CALL}' THEN 1 END), "
        f"COUNT(CASE WHEN type = '{TOOL_CALL}' AND {error} = '{ARGUMENTS_ERROR}' THEN 1 END) "
        f"FROM (SELECT run_id, type, {doc} AS d FROM {prefix}events "
        f"WHERE {_in(n)} AND type IN ('{MODEL_CALL}', '{TOOL_CALL}')) AS e GROUP BY run_id"
    )


def transitions_sql(prefix: str, n: int) -> str:
    """Per run: escalations, validations, failed validations, first and last transition time."""
    failed = ", ".join(f"'{s}'" for s in FAILED_VALIDATION)
    from_validating = f"src = '{VALIDATING}' AND dst <> '{CANCELLED}'"
    return (
        f"SELECT run_id, COUNT(CASE WHEN dst = '{ESCALATED}' THEN 1 END), "
        f"COUNT(CASE WHEN {from_validating} THEN 1 END), "
        f"COUNT(CASE WHEN {from_validating} AND dst IN ({failed}) THEN 1 END), "
        f"MIN(ts), MAX(ts) FROM {prefix}transitions WHERE {_in(n)} GROUP BY run_id"
    )


def phases_sql(prefix: str, n: int) -> str:
    """Per run and state: seconds from each transition into it to the next transition."""
    return (
        "SELECT run_id, dst, SUM(CASE WHEN nxt > ts THEN nxt - ts ELSE 0 END) FROM "
        "(SELECT run_id, dst, ts, LEAD(ts) OVER (PARTITION BY run_id ORDER BY seq) AS nxt "
        f"FROM {prefix}transitions WHERE {_in(n)}) AS t WHERE nxt IS NOT NULL "
        "GROUP BY run_id, dst"
    )
