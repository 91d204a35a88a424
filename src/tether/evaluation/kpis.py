"""Agent KPIs aggregated per workflow and period: ``kpis(store, workflow=..., since=...)``.

Runs are read newest first a page at a time (``RunStore.list_runs`` with a cursor) until one
was created before ``since``; the store sums each page's model calls and transitions in one
batch (``kpi_totals``), and each run's journal and plan events give the rest (``run_kpis``).
Ratios are pooled over the runs (the sum of numerators over the sum of denominators), so a run
with many tool calls weighs more than a run with one; each definition is in
docs/evaluation.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.core.errors import InvalidInputError
from tether.core.finite import is_number
from tether.evaluation.run_kpis import RunKpis, finite, ratio, run_kpis
from tether.store.evaluation_log import EvaluationLogStore
from tether.store.kpi_totals import RunTotals
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

RUN_PAGE = 200


def nearest_rank(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) by nearest rank: the ceil(q*n)-th smallest value."""
    xs = sorted(values)
    if not xs:
        return None
    rank = max(1, -(-round(q * 1000) * len(xs) // 1000))
    return xs[min(rank, len(xs)) - 1]


@dataclass(slots=True)
class KpiSummary:
    """The KPIs of a set of runs (one workflow, or all of them)."""

    workflow: str | None
    runs: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    escalated_runs: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    tools_used_later: int = 0
    planned_steps: int = 0
    executed_planned: int = 0
    tokens: int = 0
    cost: float = 0.0
    validations: int = 0
    validation_failures: int = 0
    tool_events: int = 0
    tool_argument_errors: int = 0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list, repr=False)

    def add(self, r: RunKpis) -> None:
        self.runs += 1
        self.completed += r.completed
        self.failed += r.status == "FAILED"
        self.cancelled += r.status == "CANCELLED"
        self.escalated_runs += r.escalations > 0
        self.model_calls += r.model_calls
        self.tool_calls += r.tool_calls
        self.tools_used_later += r.tools_used_later
        self.planned_steps += r.planned_steps
        self.executed_planned += r.executed_planned
        self.tokens += r.tokens
        self.cost += r.cost
        self.validations += r.validations
        self.validation_failures += r.validation_failures
        self.tool_events += r.tool_events
        self.tool_argument_errors += r.tool_argument_errors
        for phase, secs in r.phase_seconds.items():
            self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + secs
        if r.latency is not None:
            self.latencies.append(r.latency)

    @property
    def plan_fidelity(self) -> float | None:
        return ratio(self.executed_planned, self.planned_steps)

    @property
    def tool_utility(self) -> float | None:
        return ratio(self.tools_used_later, self.tool_calls)

    @property
    def thought_to_action(self) -> float | None:
        return ratio(self.model_calls, self.tool_calls)

    @property
    def tokens_per_completed_task(self) -> float | None:
        return ratio(self.tokens, self.completed)

    @property
    def cost_per_completed_task(self) -> float | None:
        return ratio(self.cost, self.completed)

    @property
    def validation_failure_rate(self) -> float | None:
        return ratio(self.validation_failures, self.validations)

    @property
    def tool_argument_failure_rate(self) -> float | None:
        return ratio(self.tool_argument_errors, self.tool_events)

    @property
    def escalation_rate(self) -> float | None:
        return ratio(self.escalated_runs, self.runs)

    @property
    def latency_p50(self) -> float | None:
        return nearest_rank(self.latencies, 0.5)

    @property
    def latency_p95(self) -> float | None:
        return nearest_rank(self.latencies, 0.95)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "runs": self.runs,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "escalated_runs": self.escalated_runs,
            "plan_fidelity": self.plan_fidelity,
            "tool_utility": self.tool_utility,
            "thought_to_action": self.thought_to_action,
            "tokens_per_completed_task": self.tokens_per_completed_task,
            "cost_per_completed_task": self.cost_per_completed_task,
            "validation_failure_rate": self.validation_failure_rate,
            "tool_argument_failure_rate": self.tool_argument_failure_rate,
            "escalation_rate": self.escalation_rate,
            "latency_p50": self.latency_p50,
            "latency_p95": self.latency_p95,
            "phase_seconds": dict(sorted(self.phase_seconds.items())),
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "tokens": self.tokens,
            "cost": finite(self.cost),
        }


@dataclass(slots=True)
class KpiReport:
    since: float | None
    until: float | None
    overall: KpiSummary
    by_workflow: dict[str, KpiSummary]
    runs: list[RunKpis] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "overall": self.overall.as_dict(),
            "workflows": {k: v.as_dict() for k, v in sorted(self.by_workflow.items())},
        }


async def _page_totals(store: RunStore, page: list[RunRecord]) -> dict[str, RunTotals] | None:
    """A page of runs' sums in one batch (SQL aggregates), when the store has them."""
    if not isinstance(store, EvaluationLogStore) or not page:
        return None
    return await store.kpi_totals([r.run_id for r in page])


async def kpis(
    store: RunStore,
    *,
    workflow: str | None = None,
    since: float | None = None,
    until: float | None = None,
    now: float | None = None,
    max_runs: int | None = None,
    tenant: str | None = None,
) -> KpiReport:
    """The KPIs of the runs created in ``[since, until)`` (of ``workflow``, or of every
    workflow, each also on its own), newest first up to ``max_runs``; with ``tenant``, only
    that tenant's runs (None: every tenant's). ``now`` closes the phase a still-running run is
    in (default: its time is not counted)."""
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and not is_number(bound):  # NaN took every run, inf none
            raise InvalidInputError(f"{name} must be finite Unix seconds or None, got {bound!r}")
    if since is not None and until is not None and until < since:
        raise InvalidInputError(f"until ({until}) is before since ({since}); swap them")
    if max_runs is not None and max_runs < 1:
        raise InvalidInputError(f"max_runs must be at least 1, got {max_runs}")
    overall = KpiSummary(workflow)
    groups: dict[str, KpiSummary] = {}
    facts: list[RunKpis] = []
    before: str | None = None
    while True:
        page = await store.list_runs(
            workflow=workflow, tenant=tenant, limit=RUN_PAGE, before=before
        )
        totals = await _page_totals(store, page)
        for rec in page:
            if since is not None and rec.created_at < since:
                return KpiReport(since, until, overall, groups, facts)
            if until is not None and rec.created_at >= until:
                continue
            t = totals.get(rec.run_id, RunTotals(rec.run_id)) if totals is not None else None
            r = await run_kpis(store, rec, now=now, totals=t)
            facts.append(r)
            overall.add(r)
            groups.setdefault(rec.workflow, KpiSummary(rec.workflow)).add(r)
            if max_runs is not None and len(facts) >= max_runs:
                return KpiReport(since, until, overall, groups, facts)
        if len(page) < RUN_PAGE:
            return KpiReport(since, until, overall, groups, facts)
        before = page[-1].run_id
