"""The KPIs page in headless Chromium: runs with known outcomes, and every figure on the page
is the one ``GET /v1/kpis`` answers (overall, per workflow, per phase); a workflow filter, an
empty period, and a key without the admin scope (403) shown as what to do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.server.dashboard.server import Served, start, stop

KPI_KEYS = [
    "runs",
    "completed",
    "failed",
    "escalation_rate",
    "plan_fidelity",
    "tool_utility",
    "thought_to_action",
    "tokens_per_completed_task",
    "cost_per_completed_task",
    "validation_failure_rate",
    "tool_argument_failure_rate",
    "latency_p50",
    "latency_p95",
]
NOTHING = "\N{EN DASH}"
"""What the page shows for a KPI with nothing to divide by."""


@pytest.fixture(scope="module")
def outcomes(served: Served) -> dict[str, list[str]]:
    """3 quick runs and a small refund (COMPLETED), a crash (FAILED), a question (ESCALATED)."""
    runs = {
        "COMPLETED": [served.submit("quick", {"n": i}) for i in range(3)],
        "FAILED": [served.submit("crash", {"why": "kpis"})],
        "ESCALATED": [served.submit("ask", {"question": "kpis?"})],
    }
    runs["COMPLETED"].append(served.submit("refunds", {"amount": 5}))
    for status, ids in runs.items():
        for run_id in ids:
            served.wait(run_id, status)
    return runs


def api_kpis(served: Served, **params: Any) -> dict[str, Any]:
    with served.client() as c:
        r = c.get("/v1/kpis", params={k: v for k, v in params.items() if v is not None})
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out


def shown(page: Page, selector: str) -> dict[str, float | None]:
    """The raw values of the figures under ``selector``, by KPI."""
    pairs = page.locator(f"{selector} [data-kpi][data-value]").evaluate_all(
        "els => els.map(e => [e.dataset.kpi, e.dataset.value])"
    )
    return {k: None if v == "" else float(v) for k, v in pairs}


def expected(summary: dict[str, Any]) -> dict[str, float | None]:
    return {k: None if summary[k] is None else float(summary[k]) for k in KPI_KEYS}


def test_the_figures_are_those_of_the_api(
    page: Page, served: Served, outcomes: dict[str, list[str]]
) -> None:
    page.goto(f"{served.base}/kpis")
    overall = page.locator("#kpi-overall")
    expect(overall.locator('[data-kpi="runs"]')).to_have_attribute("data-value", "6")
    since = page.locator("#kpis-page").get_attribute("data-since")
    assert since  # the default period: the last 24 hours
    report = api_kpis(served, since=float(since))

    # the outcomes, counted by hand: 6 runs, 4 completed, 1 failed, 1 of 6 escalated
    o = report["overall"]
    assert (o["runs"], o["completed"], o["failed"], o["escalated_runs"]) == (6, 4, 1, 1)
    assert o["escalation_rate"] == pytest.approx(1 / 6)
    assert o["tool_utility"] is None  # no tool call ran: nothing to divide by
    assert shown(page, "#kpi-overall") == expected(o)
    expect(overall.locator('[data-kpi="escalation_rate"] .value')).to_have_text("16.7%")
    expect(overall.locator('[data-kpi="completed"] .value')).to_have_text("4")
    expect(overall.locator('[data-kpi="tool_utility"] .value')).to_have_text(NOTHING)

    rows = page.locator("#kpi-table tbody tr")
    expect(rows).to_have_count(4)
    names = rows.evaluate_all("rs => rs.map(r => r.dataset.workflow)")
    assert names == sorted(report["workflows"]) == ["ask", "crash", "quick", "refunds"]
    for name, summary in report["workflows"].items():
        assert shown(page, f'#kpi-table tr[data-workflow="{name}"]') == expected(summary), name
    ask = page.locator('#kpi-table tr[data-workflow="ask"]')
    expect(ask.locator('[data-kpi="escalation_rate"]')).to_have_text("100%")

    phases = page.locator("#kpi-phases .phase-row").evaluate_all(
        "rs => rs.map(r => [r.dataset.phase, Number(r.dataset.value)])"
    )
    assert dict(phases) == o["phase_seconds"]
    assert {"RECEIVED", "EXECUTING"} <= set(o["phase_seconds"])


def test_a_workflow_filter_and_an_empty_period(
    page: Page, served: Served, outcomes: dict[str, list[str]]
) -> None:
    page.goto(f"{served.base}/kpis?period=all")
    expect(page.locator("#kpi-period button.on")).to_have_text("All time")
    expect(page.locator("#kpi-table tbody tr")).to_have_count(4)
    assert page.locator("#kpis-page").get_attribute("data-since") == ""

    page.locator("#kpi-workflow").select_option("quick")
    expect(page.locator("#kpi-table tbody tr")).to_have_count(1)
    expect(page.locator('#kpi-overall [data-kpi="runs"]')).to_have_attribute("data-value", "3")
    report = api_kpis(served, workflow="quick")
    assert report["overall"]["completed"] == 3
    assert shown(page, "#kpi-overall") == expected(report["overall"])
    assert "workflow=quick" in page.url

    page.locator("#kpi-workflow").select_option("chatter")  # registered, never run
    expect(page.locator("#kpis-empty")).to_contain_text("No runs of chatter")
    expect(page.locator("#kpis-body")).to_be_hidden()
    assert api_kpis(served, workflow="chatter")["overall"]["runs"] == 0

    page.reload()  # the filters are in the URL
    expect(page.locator("#kpi-workflow")).to_have_value("chatter")
    expect(page.locator("#kpis-empty")).to_be_visible()
    page.keyboard.press("g")
    page.keyboard.press("r")  # g r: back to the runs
    expect(page.locator("#runs-table")).to_be_visible()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("kpis-keyed"), with_api_key=True)
    try:
        yield server
    finally:
        stop(server)


def test_a_key_without_the_admin_scope(page: Page, keyed: Served) -> None:
    assert keyed.api_key
    with keyed.client() as c:
        refused = c.get("/v1/kpis")
    assert refused.status_code == 403
    page.add_init_script(f"localStorage.setItem('tether.apiKey', {keyed.api_key!r})")
    page.goto(f"{keyed.base}/kpis")
    notice = page.locator("#kpis-forbidden")
    expect(notice).to_contain_text("KPIs need an admin key")
    expect(notice).to_contain_text("admin scope")
    expect(page.locator("#kpis-body")).to_be_hidden()
    expect(page.locator("#key-dialog")).to_have_count(0)  # a 403 is no reason to ask again
