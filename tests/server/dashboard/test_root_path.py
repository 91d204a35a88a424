"""The server behind a reverse proxy that mounts it under ``/tether`` and strips the path
(``tether serve --root-path /tether``), or passes it on unchanged: the dashboard in headless Chromium loads, lists, opens
a run, answers an interrupt and navigates without a request leaving ``/tether``; the API hands
out URLs under it; the API docs find their schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.server.dashboard.conftest import shot
from tests.server.dashboard.server import Served, start, stop
from tests.server.dashboard.strip_proxy import StripProxy
from tests.server.uvicorn_thread import served as serve_in_thread

PREFIX = "/tether"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("rooted"), root_path=PREFIX)
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="module")
def proxy(backend: Served) -> Iterator[tuple[str, StripProxy]]:
    app = StripProxy(backend.base, PREFIX)
    with serve_in_thread(app) as url:
        yield url + PREFIX, app


def test_the_api_behind_the_proxy_hands_out_urls_under_its_path(
    proxy: tuple[str, StripProxy],
) -> None:
    base, _ = proxy
    with httpx.Client(base_url=base, timeout=60) as http:
        made = http.post("/v1/runs", json={"workflow": "quick", "input": {}})
        assert made.status_code == 202
        assert made.headers["location"] == f"{PREFIX}/v1/runs/{made.json()['run_id']}"
        docs = http.get("/docs")
        assert docs.status_code == 200 and f"{PREFIX}/openapi.json" in docs.text
        assert http.get("/openapi.json").json()["servers"] == [{"url": PREFIX}]
        index = http.get("/runs").text
        assert f'<meta name="tether-root" content="{PREFIX}">' in index
        assert f'href="{PREFIX}/approvals"' in index and f'src="{PREFIX}/assets/' in index


def test_the_dashboard_works_under_the_proxys_path(
    page: Page, backend: Served, proxy: tuple[str, StripProxy]
) -> None:
    base, app = proxy
    done = backend.submit("quick", {})
    backend.wait(done, "COMPLETED")
    asking = backend.submit("ask", {"question": "which path?"})
    backend.wait(asking, "ESCALATED")
    app.paths.clear()

    page.goto(f"{base}/")
    row = page.locator(f'tr[data-run-id="{asking}"]')
    expect(row).to_be_visible()
    expect(page.locator(f'tr[data-run-id="{done}"]')).to_be_visible()
    link = row.locator("a").first
    assert link.get_attribute("href") == f"{PREFIX}/runs/{asking}"
    link.click()
    expect(page.locator("#run-head h1")).to_have_text(asking)
    assert page.url == f"{base}/runs/{asking}"
    expect(page.locator("#run-status")).to_have_attribute("data-status", "ESCALATED")

    notice = page.locator(".notice.interrupt")
    expect(notice).to_contain_text("which path?")
    notice.locator("textarea.resume-value").fill('"under the proxy"')
    notice.locator("button.resume").click()
    expect(page.locator("#run-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=90_000
    )  # the live stream came through the proxy
    expect(page.locator("#state-tree")).to_contain_text("the human said under the proxy")
    shot(page, "root-path-run")

    page.locator('a[data-nav="approvals"]').click()
    assert page.url == f"{base}/approvals"
    page.go_back()
    expect(page.locator("#run-head h1")).to_have_text(asking)
    page.reload()  # a reload of a rooted URL opens the same page
    expect(page.locator("#run-head h1")).to_have_text(asking)

    escaped = [p for p in app.paths if not p.startswith(PREFIX + "/")]
    assert escaped == [], f"requests that left {PREFIX}: {escaped}"
    assert any(p.startswith(f"{PREFIX}/v1/runs/{asking}/events") for p in app.paths)


def test_root_path_is_checked(tmp_path: Path) -> None:
    from tether.cli.main import main

    assert main(["serve", "--root-path", "/te ther", "--store", f"sqlite:///{tmp_path}/r.db"]) == 2


def test_the_dashboard_works_behind_a_proxy_that_passes_the_path_on(
    page: Page, backend: Served
) -> None:
    """Traefik, most ingresses, nginx without the trailing ``/``: ``/tether/...`` arrives
    as it was asked for (here: straight at the server, which is what such a proxy forwards)."""
    done = backend.submit("quick", {})
    backend.wait(done, "COMPLETED")
    base = backend.base + PREFIX
    page.goto(f"{base}/")
    row = page.locator(f'tr[data-run-id="{done}"]')
    expect(row).to_be_visible()
    row.locator("a").first.click()
    expect(page.locator("#run-head h1")).to_have_text(done)
    assert page.url == f"{base}/runs/{done}"
    expect(page.locator("#run-status")).to_have_attribute("data-status", "COMPLETED")
    page.reload()
    expect(page.locator("#run-head h1")).to_have_text(done)
    shot(page, "root-path-unstripped")
