"""The runs list in headless Chromium: the failures-only filter, a new run appearing live
(no reload), at most 2 API requests to show it, opening a run from the keyboard, a finished
run's tokens and cost shown from the live stream."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Request, expect

from tests.server.dashboard.server import Served


def test_failures_only_filter(page: Page, served: Served) -> None:
    failed = served.submit("crash", {"why": "filter"})
    ok = served.submit("quick", {})
    served.wait(failed, "FAILED")
    served.wait(ok, "COMPLETED")
    page.goto(f"{served.base}/runs")
    expect(page.locator(f'tr[data-run-id="{ok}"]')).to_be_visible()

    page.locator("#failures-only").click()
    expect(page.locator(f'tr[data-run-id="{failed}"]')).to_be_visible()
    expect(page.locator(f'tr[data-run-id="{ok}"]')).to_have_count(0)
    statuses = page.locator("#runs-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert statuses and set(statuses) == {"FAILED"}
    assert "failed=1" in page.url

    page.reload()  # the filter is in the URL: a reload or a shared link keeps it
    expect(page.locator("#failures-only")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f'tr[data-run-id="{ok}"]')).to_have_count(0)
    page.keyboard.press("f")  # the shortcut turns it off again
    expect(page.locator(f'tr[data-run-id="{ok}"]')).to_be_visible()


def test_status_and_workflow_filters_and_search(page: Page, served: Served) -> None:
    waiting = served.submit("ask", {"question": "filters?"})
    served.wait(waiting, "ESCALATED")
    page.goto(f"{served.base}/runs?status=ESCALATED")
    expect(page.locator(f'tr[data-run-id="{waiting}"]')).to_be_visible()
    statuses = page.locator("#runs-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert set(statuses) == {"ESCALATED"}
    page.locator("#status-filter").select_option("")
    page.locator("#workflow-filter").select_option("ask")
    expect(page.locator("#runs-table tbody tr td:nth-child(3)").first).to_have_text("ask")
    names = page.locator("#runs-table tbody tr td:nth-child(3)").all_inner_texts()
    assert set(names) == {"ask"}
    page.keyboard.press("/")
    page.keyboard.type(waiting[-8:])
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#run-head h1")).to_have_text(waiting)


def test_a_new_run_appears_without_a_reload(page: Page, served: Served) -> None:
    page.goto(f"{served.base}/runs")
    expect(page.locator("#runs-count")).to_contain_text("run")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#live-indicator")).to_be_visible()
    run_id = served.submit("quick", {"n": 41})
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "COMPLETED")
    assert page.evaluate("window.__sameDocument") is True  # no navigation happened


def test_the_list_loads_with_at_most_two_api_requests(page: Page, served: Served) -> None:
    served.wait(served.submit("quick", {}), "COMPLETED")
    api: list[str] = []

    def seen(req: Request) -> None:
        path = req.url.split("://", 1)[1].split("/", 1)[1]
        if path.startswith("v1/"):
            api.append(path)

    page.on("request", seen)
    page.goto(f"{served.base}/runs")
    expect(page.locator("#runs-table tbody tr").first).to_be_visible()
    lists = [p for p in api if p.startswith("v1/runs")]
    assert len(lists) == 1, api
    assert len(api) <= 2, api  # the page of runs and the live stream


def test_keyboard_opens_the_selected_run(page: Page, served: Served) -> None:
    run_id = served.submit("quick", {"n": 1})
    served.wait(run_id, "COMPLETED")
    page.goto(f"{served.base}/runs")
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_be_visible()
    page.keyboard.press("j")
    expect(page.locator("#runs-table tbody tr.selected")).to_have_count(1)
    selected = page.locator("#runs-table tbody tr.selected").get_attribute("data-run-id")
    page.keyboard.press("Enter")
    expect(page.locator("#run-head h1")).to_have_text(selected or "")
    page.keyboard.press("Escape")
    expect(page.locator("#runs-table")).to_be_visible()


def test_without_the_run_stream_the_list_polls(page: Page, served: Served) -> None:
    page.route("**/v1/stream/runs", lambda route: route.abort())  # a proxy that cannot stream
    page.goto(f"{served.base}/runs")
    expect(page.locator("#runs-count")).to_contain_text("run")
    expect(page.locator("#live-indicator")).to_have_class("live-dot polling")
    run_id = served.submit("quick", {"n": 77})
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_have_attribute(
        "data-status", "COMPLETED"
    )


def test_a_run_at_step_0_shows_its_step(page: Page, served: Served) -> None:
    run_id = served.submit("crash", {"why": "step zero"})
    assert served.wait(run_id, "FAILED")["step"] == 0
    page.goto(f"{served.base}/runs")
    expect(page.locator(f'tr[data-run-id="{run_id}"] td:nth-child(4)')).to_have_text("0")


def test_a_finished_run_shows_its_tokens_and_cost_without_a_reload(
    page: Page, served: Served
) -> None:
    run_id = served.submit("spend", {})
    served.wait(run_id, "ESCALATED")
    page.goto(f"{served.base}/runs")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row.locator("td:nth-child(5)")).to_have_text("0")  # no model call yet
    expect(page.locator("#live-indicator")).to_have_attribute("title", "live (server-sent events)")
    page.evaluate("window.__sameDocument = true")
    lists: list[str] = []
    page.on("request", lambda req: lists.append(req.url) if "/v1/runs" in req.url else None)
    with served.client() as c:
        c.post(f"/v1/runs/{run_id}/resume", json={"value": "go"}).raise_for_status()
    expect(row).to_have_attribute("data-status", "COMPLETED")
    # the run-change stream's item carries the usage the list shows (1,200 + 34 tokens)
    expect(row.locator("td:nth-child(5)")).to_have_text(re.compile(r"^1\D?234$"))
    expect(row.locator("td:nth-child(6)")).to_have_text("$0.250")
    assert page.evaluate("window.__sameDocument") is True  # no navigation happened
    assert lists == []  # nor a read of the list: the stream said it all
