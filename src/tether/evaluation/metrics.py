"""The KPIs as Prometheus samples, for the server's ``/metrics``: ``kpi_metrics(store)``.

One gauge per KPI, labelled by workflow (``tether_kpi_plan_fidelity{workflow="triage"}``);
a KPI with no value for a workflow (no tool calls, no finished run...) is left out rather than
reported as 0.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.evaluation.kpis import KpiSummary, kpis
from tether.store.protocol import RunStore

GAUGES: dict[str, tuple[str, Callable[[KpiSummary], float | None]]] = {
    "tether_kpi_runs": ("Runs in the period", lambda s: float(s.runs)),
    "tether_kpi_plan_fidelity": ("Planned steps executed / planned", lambda s: s.plan_fidelity),
    "tether_kpi_tool_utility": ("Tool calls whose observation was used later / tool calls",
                                lambda s: s.tool_utility),
    "tether_kpi_thought_to_action": ("Model calls / tool calls", lambda s: s.thought_to_action),
    "tether_kpi_tokens_per_completed_task": ("Tokens / completed runs",
                                             lambda s: s.tokens_per_completed_task),
    "tether_kpi_cost_per_completed_task_usd": ("Cost / completed runs",
                                               lambda s: s.cost_per_completed_task),
    "tether_kpi_validation_failure_rate": ("Failed validations / validations",
                                           lambda s: s.validation_failure_rate),
    "tether_kpi_tool_argument_failure_rate": (
        "Tool calls refused for invalid arguments / tool calls",
        lambda s: s.tool_argument_failure_rate,
    ),
    "tether_kpi_escalation_rate": ("Runs escalated at least once / runs",
                                   lambda s: s.escalation_rate),
    "tether_kpi_run_latency_p50_seconds": ("Median run latency", lambda s: s.latency_p50),
    "tether_kpi_run_latency_p95_seconds": ("95th percentile run latency",
                                           lambda s: s.latency_p95),
}  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(summaries: dict[str, KpiSummary]) -> str:
    """Prometheus text exposition of each workflow's KPIs (and the phase times)."""
    lines: list[str] = []
    for name, (help_text, get) in GAUGES.items():
        samples = [(w, get(s)) for w, s in sorted(summaries.items())]
        samples = [(w, v) for w, v in samples if v is not None]
        if not samples:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f'{name}{{workflow="{_label(w)}"}} {v!r}' for w, v in samples]
    phases = [
        (w, p, secs)
        for w, s in sorted(summaries.items())
        for p, secs in sorted(s.phase_seconds.items())
    ]
    if phases:
        name = "tether_kpi_phase_seconds"
        lines += [
            f"# HELP {name} Seconds runs spent in each lifecycle state",
            f"# TYPE {name} gauge",
        ]
        lines += [f'{name}{{workflow="{_label(w)}",phase="{p}"}} {v!r}' for w, p, v in phases]
    return "\n".join(lines) + ("\n" if lines else "")


async def kpi_metrics(
    store: RunStore, *, since: float | None = None, max_runs: int | None = 10_000
) -> str:
    """The KPIs of the runs created since ``since`` (at most ``max_runs``, newest first) as
    Prometheus text, one series per workflow: what ``/metrics`` appends to its output."""
    report = await kpis(store, since=since, max_runs=max_runs)
    return render_metrics(report.by_workflow)
