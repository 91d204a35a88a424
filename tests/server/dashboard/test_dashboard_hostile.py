"""The dashboard as a hostile user sees it, in headless Chromium against a real server: run data,
names and errors holding markup, quotes, ``javascript:`` URLs, a right-to-left override and
U+2028 never run and are shown as they are; URLs that are not run ids, API keys that cannot be
sent or may not read, and the headers the page is served with."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.server.dashboard.conftest import shot
from tests.server.dashboard.hostile_app import EVIL_WORKFLOW, PAYLOAD
from tests.server.dashboard.server import Served, start, stop
from tether import Runtime
from tether.server.keys import create_key

HOSTILE_APP = "tests.server.dashboard.hostile_app:app"
HIDDEN = ("\u202e", "\u2028")
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""
"""Collects the page's CSP violations: a payload that tried to run (an inline handler, a
javascript: URL) or HTML parsed from a string (Trusted Types) would be refused and noted."""


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    # a thread of its own: Playwright's sync API keeps an event loop in the test's thread
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("hostile"), app=HOSTILE_APP)
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("keyed-hostile"), with_api_key=True)
    try:
        yield server
    finally:
        stop(server)


def untouched(page: Page) -> None:
    """Nothing a payload holds ran, and the page broke no rule of its CSP."""
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__csp") == []


def shown_as_held(page: Page, selector: str) -> None:
    """The JSON under ``selector`` writes the RLO and U+2028 as escapes: what it shows is what
    the value holds (the key after the string reads "key", not "yek")."""
    texts = page.locator(selector).all_text_contents()
    assert texts
    for text in texts:
        assert not any(c in text for c in HIDDEN), repr(text[:200])
    assert any("\\u202e" in t and "\\u2028" in t for t in texts)


def test_hostile_run_data_never_runs_and_shows_as_it_holds(page: Page, hostile: Served) -> None:
    page.add_init_script(WATCH)
    waiting = hostile.submit(EVIL_WORKFLOW, {"note": PAYLOAD})
    crashed = hostile.submit(EVIL_WORKFLOW, {"note": PAYLOAD, "crash": True})
    approval = hostile.submit(EVIL_WORKFLOW, {"note": PAYLOAD})
    hostile.wait(waiting, "ESCALATED")
    hostile.wait(crashed, "FAILED")
    hostile.wait(approval, "ESCALATED")
    with hostile.client() as c:
        c.post(f"/v1/runs/{approval}/resume", json={"value": PAYLOAD}).raise_for_status()
    hostile.wait(approval, "ESCALATED")  # now on the payment's approval

    page.goto(f"{hostile.base}/runs/{waiting}")
    notice = page.locator(".notice.interrupt")
    expect(notice).to_contain_text("The run asks:")
    shown_as_held(page, ".notice.interrupt .json")
    expect(notice.locator(".json .k").last).to_have_text(
        '"'
        + PAYLOAD.replace('"', '\\"').replace("\u202e", "\\u202e").replace("\u2028", "\\u2028")
        + '"'
    )
    shown_as_held(page, "#state-tree .json")
    expect(page.locator(f'#graph [data-node="{"ask"}\\"\'><b>"]')).to_have_count(1)
    expect(page.locator("#run-head")).to_contain_text(EVIL_WORKFLOW)
    untouched(page)
    shot(page, "hostile-interrupt")

    page.keyboard.press("3")  # the events, the hostile one opened
    row = page.locator('.ev-row[data-seq="4"]')
    expect(row).to_contain_text("\\u202e")
    row.click()
    shown_as_held(page, "#event-detail .json")
    page.keyboard.press("4")
    shown_as_held(page, "#io-panel .json")
    page.keyboard.press("2")
    expect(page.locator("#state-diff .d-row").first).to_be_visible()
    assert not any(c in page.locator("#state-diff").inner_text() for c in HIDDEN)
    untouched(page)

    page.goto(f"{hostile.base}/runs/{crashed}")
    expect(page.locator("#run-error")).to_be_visible()
    shown_as_held(page, "#run-error .json")
    untouched(page)

    page.goto(f"{hostile.base}/approvals")
    card = page.locator(f'#approvals-list .approval:has(a[href$="{approval}"])')
    expect(card).to_contain_text("pay")
    shown_as_held(page, f'#approvals-list .approval:has(a[href$="{approval}"]) .args')
    untouched(page)
    shot(page, "hostile-approvals")

    page.goto(f"{hostile.base}/runs")
    expect(page.locator(f'tr[data-run-id="{waiting}"]')).to_contain_text(EVIL_WORKFLOW)
    page.goto(f"{hostile.base}/kpis?period=all")
    expect(page.locator("#kpi-table a").filter(has_text=EVIL_WORKFLOW)).to_have_count(1)
    untouched(page)


def test_the_page_refuses_html_from_strings(page: Page, hostile: Served) -> None:
    """Trusted Types without a policy: a future innerHTML (or eval) throws instead of parsing a
    run's data as markup."""
    page.goto(f"{hostile.base}/runs")
    expect(page.locator("#runs-table")).to_be_visible()
    refused = page.evaluate(
        """() => { try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); return 'parsed'; }
                   catch (e) { return e.name; } }"""
    )
    assert refused == "TypeError"


def test_the_page_is_served_with_strict_headers(hostile: Served) -> None:
    r = httpx.get(f"{hostile.base}/runs/x", timeout=30)
    csp = r.headers["content-security-policy"]
    for directive in (
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ):
        assert directive in csp
    assert "unsafe" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cross-origin-opener-policy"] == "same-origin"


def test_a_run_id_with_every_allowed_character_opens(page: Page, hostile: Served) -> None:
    run_id = "AZaz09_.:@-end"

    async def make() -> None:
        from tests.server.dashboard.hostile_app import evil

        async with Runtime(hostile.store_url) as rt:
            await rt.start(evil, {"crash": True}, run_id=run_id, execute=False)

    _run(make())
    hostile.wait(run_id, "FAILED")
    page.goto(f"{hostile.base}/runs")
    page.locator(f'tr[data-run-id="{run_id}"]').click()
    expect(page.locator("#run-head h1")).to_have_text(run_id)
    page.reload()
    expect(page.locator("#run-head h1")).to_have_text(run_id)
    expect(page.locator("#run-status")).to_have_attribute("data-status", "FAILED")


def test_a_malformed_run_url_says_what_is_wrong(page: Page, hostile: Served) -> None:
    """A link cut inside a %-escape drew nothing (URIError in the router); a path that is no
    run id stayed on "loading…" (the server's error list has "path.run_id", not a list)."""
    page.goto(f"{hostile.base}/runs/%E0%A4%A")
    expect(page.locator(".notice.fail")).to_contain_text("run_id")
    expect(page.locator(".run-head h1")).to_have_text("%E0%A4%A")
    page.goto(f"{hostile.base}/runs/a%20b")
    expect(page.locator(".notice.fail")).to_contain_text("Could not load the run")
    expect(page.locator(".notice.fail")).to_contain_text("path.run_id")
    shot(page, "hostile-bad-run-id")
    # a run that was deleted (or never was) says so
    page.goto(f"{hostile.base}/runs/no-such-run")
    expect(page.locator(".notice.fail")).to_contain_text("No such run")


def test_a_key_that_cannot_be_sent_is_asked_for_again(page: Page, keyed: Served) -> None:
    """A key holding a "…" or a zero-width space made every request fail inside fetch (red dot,
    "Failed to execute 'fetch'"), with no prompt to fix it."""
    assert keyed.api_key
    run_id = keyed.submit("quick", {"n": 1})
    keyed.wait(run_id, "COMPLETED")
    page.goto(f"{keyed.base}/kpis")
    page.evaluate("localStorage.setItem('tether.apiKey', 'tk_pasted\u2026')")
    page.goto(f"{keyed.base}/runs")
    expect(page.locator("#key-dialog")).to_be_visible()  # the saved key counts as none
    page.locator("#api-key-input").fill(keyed.api_key + "\u200b")
    page.get_by_role("button", name="Save key").click()
    expect(page.locator("#key-dialog .error")).to_contain_text("not plain ASCII")
    page.locator("#api-key-input").fill(keyed.api_key)
    page.get_by_role("button", name="Save key").click()
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_be_visible()
    expect(page.locator("#live-indicator")).to_have_attribute("title", "live (server-sent events)")

    page.locator("#key-button").click()  # the key button refuses it too
    page.locator("#edit-key-input").fill("tk_a b")
    page.locator("#edit-key-dialog").get_by_role("button", name="Save").click()
    expect(page.locator("#edit-key-dialog .error")).to_contain_text("not plain ASCII")
    assert page.evaluate("localStorage.getItem('tether.apiKey')") == keyed.api_key


def test_a_key_without_read_scope_is_told_and_not_retried(page: Page, keyed: Served) -> None:
    """The runs list said "the server does not answer" (red) and asked again every second."""

    async def submit_only() -> str:
        async with Runtime(keyed.store_url) as rt:
            return str((await create_key(rt.store, "acme", ["submit"], "no-read"))[1])

    key = _run(submit_only())
    page.goto(f"{keyed.base}/kpis")
    page.evaluate(f"localStorage.setItem('tether.apiKey', {key!r})")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/" in r.url else None)
    page.goto(f"{keyed.base}/runs")
    expect(page.locator("#runs-empty")).to_contain_text("lacks the 'read' scope")
    dot = page.locator("#live-indicator")
    expect(dot).to_have_class("live-dot forbidden")
    expect(dot).to_have_attribute("title", "no live updates: this API key may not read runs")
    shot(page, "hostile-no-read-scope")
    settled = len(asked)
    page.wait_for_timeout(3000)  # polling would ask about three times more by now
    assert len(asked) == settled, asked[settled:]
