"""A run with 20,000 events opens in headless Chromium with a virtualised, paged list; a
multi-line payload reads as pretty, collapsible JSON; a live run's events arrive by SSE."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.server.dashboard.conftest import shot
from tests.server.dashboard.server import Served

EVENTS = 20_000


def test_a_run_with_20000_events_opens(page: Page, served: Served) -> None:
    run_id = served.submit("chatter", {"events": EVENTS})
    served.wait(run_id, "COMPLETED")
    with served.client() as c:
        tail = c.get(f"/v1/runs/{run_id}/events", params={"after": EVENTS, "limit": 500}).json()
    last = tail["items"][-1]["seq"]  # the node's events, then step_finished and lifecycle
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/events" in r.url else None)
    page.goto(f"{served.base}/runs/{run_id}?tab=events")

    expect(page.locator('.ev-row[data-seq="1"]')).to_be_visible()
    expect(page.locator('.ev-row[data-seq="10"]')).to_contain_text("progress")
    # virtualised: a screenful of rows in the DOM, not 20,000
    assert page.locator(".ev-row").count() < 120
    # paged: the page in view only (then one-event probes find the last seq), not every event
    pages = [u for u in requests if "limit=200" in u]
    assert len(pages) <= 2, pages
    expect(page.locator("#events-count")).to_have_text(f"{last:,} events")
    shot(page, "events-20000")

    # a multi-line payload: its lines shown as lines, in a collapsible tree
    page.locator('.ev-row[data-seq="10"]').click()
    detail = page.locator("#event-detail")
    text = detail.locator("span.s", has_text="line one of 6").evaluate("el => el.textContent")
    assert text == '"line one of 6\n line two of 6"'  # two lines, not one with a \\n escape
    expect(detail.locator("details").first).to_have_attribute("open", "")

    # End: the last event, its page fetched directly
    page.locator("#events-viewport").focus()
    page.keyboard.press("End")
    expect(page.locator(f'.ev-row[data-seq="{last}"]')).to_be_visible()
    expect(page.locator("#events-count")).to_have_text(f"{last:,} events")
    assert page.locator(".ev-row").count() < 120


def test_live_events_arrive_on_an_open_run(page: Page, served: Served) -> None:
    run_id = served.submit("ask", {"question": "live?"})
    served.wait(run_id, "ESCALATED")
    page.goto(f"{served.base}/runs/{run_id}?tab=events")
    expect(page.locator(".ev-row .chip").first).to_be_visible()
    before = page.locator("#events-count").inner_text()
    with served.client() as c:
        c.post(f"/v1/runs/{run_id}/resume", json={"value": "sure"}).raise_for_status()
    expect(page.locator("#run-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=90_000
    )
    expect(page.locator("#events-count")).not_to_have_text(before)
    expect(page.locator("#events-viewport")).to_contain_text("COMPLETED")
