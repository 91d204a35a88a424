"""Fixtures of the dashboard tests: a real server process, headless Chromium (Debian's
/usr/bin/chromium driven by Playwright), and screenshots kept as test artifacts (in
``$TETHER_TEST_ARTIFACTS``, default ``<repo>/.artifacts/dashboard/``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest

from tests.server.dashboard.server import ROOT, Served, start, stop

playwright_sync.expect.set_options(timeout=60_000)  # bounds a hang only (loaded machine)

CHROMIUM = os.environ.get("TETHER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TETHER_TEST_ARTIFACTS") or ROOT / ".artifacts" / "dashboard")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("dashboard"))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_sync.Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def shot(page: playwright_sync.Page, name: str) -> Path:
    """Save a screenshot of the page as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def page(
    browser: playwright_sync.Browser, request: pytest.FixtureRequest
) -> Iterator[playwright_sync.Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(60_000)
    try:
        yield pg
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        try:
            shot(pg, f"{request.node.name}-end")
        finally:
            context.close()
