"""The public surface of ``tether.evaluation``: pinned and importable."""

from __future__ import annotations

import tether.evaluation as evaluation

EXPECTED = sorted(
    [
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
)


def test_public_names_are_pinned() -> None:
    assert sorted(evaluation.__all__) == EXPECTED


def test_every_public_name_imports() -> None:
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None, name
