"""Evaluation: mind log, agent KPIs, semantic drift monitor, shadow-mode model comparison.

* ``mind_log(store, run_id)``: every action of a run with its rationale, inputs, raw output and
  what the agent concluded next (``explain`` / ``ctx.explain`` and ``record_plan`` add the
  node's own words);
* ``kpis(store, workflow=..., since=...)`` and ``run_kpis``: plan fidelity, tool utility,
  thought-to-action ratio, tokens and cost per completed task, validation-failure and
  escalation rates, time per lifecycle phase, p50/p95 latency; ``kpi_metrics`` for /metrics;
* ``DriftMonitor``, ``check_drift``, ``drift_flags``, ``add_drift_route``: goal-to-output and
  plan-to-plan similarity, flags and a self-correction route; ``DriftWatch`` checks each run
  of chosen workflows once it completes (``tether worker --drift``);
* ``ShadowModel`` and ``shadow_report``: a candidate model shadowing the live one, and parity
  with a rollout verdict.

Definitions: docs/evaluation.md.
"""

from tether.evaluation.drift import DriftCheck, DriftMonitor
from tether.evaluation.drift_route import (
    add_drift_route,
    check_plan_drift,
    drift_check,
    drift_router,
)
from tether.evaluation.drift_runs import DriftReport, check_drift, drift_flags
from tether.evaluation.drift_watch import DriftWatch
from tether.evaluation.kpis import KpiReport, KpiSummary, kpis
from tether.evaluation.metrics import kpi_metrics
from tether.evaluation.mindlog import MindEntry, MindLog, mind_log
from tether.evaluation.rationale import explain, record_plan
from tether.evaluation.run_kpis import RunKpis, run_kpis
from tether.evaluation.shadow import ShadowModel
from tether.evaluation.shadow_distance import DecisionDistance, DecisionWeights, decision_distance
from tether.evaluation.shadow_report import ParityReport, shadow_report

__all__ = [
    "DecisionDistance",
    "DecisionWeights",
    "DriftCheck",
    "DriftMonitor",
    "DriftReport",
    "DriftWatch",
    "KpiReport",
    "KpiSummary",
    "MindEntry",
    "MindLog",
    "ParityReport",
    "RunKpis",
    "ShadowModel",
    "add_drift_route",
    "check_drift",
    "check_plan_drift",
    "decision_distance",
    "drift_check",
    "drift_flags",
    "drift_router",
    "explain",
    "kpi_metrics",
    "kpis",
    "mind_log",
    "record_plan",
    "run_kpis",
    "shadow_report",
]
