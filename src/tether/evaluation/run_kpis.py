"""The KPI facts of one run, read from the store (definitions: docs/evaluation.md).

Model calls, tokens and cost (its ``model_call`` events), and the escalations, validations and
time per phase (its lifecycle transitions) are summed by the store
(``EvaluationLogStore.kpi_totals``: SQL aggregates on SQLite and PostgreSQL, a page of runs
per statement); plan fidelity and tool use come from the run's mind log (its effect journal
and ``plan``/``rationale`` events).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tether.core.lifecycle import FINISHED, RunStatus
from tether.evaluation.mindlog import assemble, run_events
from tether.evaluation.plan_windows import plan_windows
from tether.evaluation.rationale import PLAN_EVENT, RATIONALE_EVENT
from tether.store.evaluation_log import EvaluationLogStore
from tether.store.kpi_totals import RunTotals, python_totals
from tether.store.protocol import RunStore
from tether.store.types import RunRecord


@dataclass(slots=True)
class RunKpis:
    run_id: str
    workflow: str
    status: str
    created_at: float
    latency: float | None = None
    """Seconds from RECEIVED to the run's final state; None while it has not finished."""
    model_calls: int = 0
    tool_calls: int = 0
    tool_successes: int = 0
    tools_used_later: int = 0
    planned_steps: int = 0
    executed_planned: int = 0
    plans: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    validations: int = 0
    validation_failures: int = 0
    tool_events: int = 0
    tool_argument_errors: int = 0
    escalations: int = 0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status == RunStatus.COMPLETED.value

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def plan_fidelity(self) -> float | None:
        return ratio(self.executed_planned, self.planned_steps)

    @property
    def tool_utility(self) -> float | None:
        return ratio(self.tools_used_later, self.tool_calls)

    @property
    def thought_to_action(self) -> float | None:
        return ratio(self.model_calls, self.tool_calls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            "created_at": self.created_at,
            "latency": self.latency,
            "plan_fidelity": self.plan_fidelity,
            "tool_utility": self.tool_utility,
            "thought_to_action": self.thought_to_action,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "tools_used_later": self.tools_used_later,
            "planned_steps": self.planned_steps,
            "executed_planned": self.executed_planned,
            "tokens": self.tokens,
            "cost": finite(self.cost),
            "validations": self.validations,
            "validation_failures": self.validation_failures,
            "tool_argument_errors": self.tool_argument_errors,
            "escalations": self.escalations,
            "phase_seconds": dict(self.phase_seconds),
        }


def ratio(num: float, den: float) -> float | None:
    """``num / den``; None when ``den`` is 0 or the quotient is not a finite number (a cost
    summed past the range of a float): JSON and Prometheus have no infinity."""
    if not den:
        return None
    try:
        q = num / den
    except OverflowError:  # an int beyond a float's range
        return None
    return q if math.isfinite(q) else None


def finite(value: float) -> float | None:
    """A summed amount as reported: None when it overflowed a float."""
    return value if math.isfinite(value) else None


async def totals_of(store: RunStore, run_id: str) -> RunTotals:
    """The run's KPI sums: from the store's batch aggregate when it has one, else from its
    transitions and model usage."""
    if isinstance(store, EvaluationLogStore):
        found = await store.kpi_totals([run_id])
        return found.get(run_id) or RunTotals(run_id)
    return python_totals(
        run_id, await store.list_transitions(run_id), await store.model_usage(run_id)
    )


async def run_kpis(
    store: RunStore,
    run: RunRecord | str,
    *,
    now: float | None = None,
    totals: RunTotals | None = None,
) -> RunKpis:
    """The KPI facts of one run (a record or a run id). ``now`` closes the phase a run that
    has not finished is in (default: not counted); ``totals`` are its sums when already read
    (``kpis`` reads them a page of runs at a time)."""
    rec = run if isinstance(run, RunRecord) else await store.get_run(run)
    rid = rec.run_id
    t = totals if totals is not None else await totals_of(store, rid)
    log = assemble(
        rid,
        rec.workflow,
        await store.list_effects(rid),
        await run_events(store, rid, (RATIONALE_EVENT, PLAN_EVENT)),
    )
    finished = rec.status in FINISHED
    out = RunKpis(rid, rec.workflow, rec.status.value, rec.created_at)
    if finished and t.first_ts is not None and t.last_ts is not None:
        out.latency = max(0.0, t.last_ts - t.first_ts)
    out.model_calls, out.input_tokens, out.output_tokens = (
        t.model_calls, t.input_tokens, t.output_tokens,
    )  # fmt: skip
    out.cost = t.cost
    actions = log.actions
    out.tool_calls = len(actions)
    out.tool_successes = sum(a.status == "done" for a in actions)
    out.tools_used_later = sum(bool(a.used_later) for a in actions)
    out.plans = len(log.plans)
    out.planned_steps, out.executed_planned = plan_windows(log)
    out.escalations, out.validations = t.escalations, t.validations
    out.validation_failures = t.validation_failures
    out.tool_events, out.tool_argument_errors = t.tool_events, t.tool_argument_errors
    out.phase_seconds = dict(t.phase_seconds)
    if not finished and now is not None and t.last_ts is not None:
        phase = rec.status.value
        out.phase_seconds[phase] = out.phase_seconds.get(phase, 0.0) + max(0.0, now - t.last_ts)
    return out
