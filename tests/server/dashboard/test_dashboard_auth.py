"""A server with API keys: the dashboard asks for a key on 401, keeps it in localStorage and
sends it as a Bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.server.dashboard.server import Served, start, stop


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("keyed"), with_api_key=True)
    try:
        yield server
    finally:
        stop(server)


def test_the_key_prompt_on_401(page: Page, keyed: Served, tmp_path: Path) -> None:
    assert keyed.api_key
    run_id = keyed.submit("quick", {"n": 3})
    keyed.wait(run_id, "COMPLETED")
    page.goto(f"{keyed.base}/runs")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.locator("#api-key-input").fill("tk_000000000000_wrong")
    page.get_by_role("button", name="Save key").click()
    expect(page.locator("#key-dialog .error")).to_contain_text("refused")  # asked again
    page.locator("#api-key-input").fill(keyed.api_key)
    page.get_by_role("button", name="Save key").click()
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_be_visible()
    assert page.evaluate("localStorage.getItem('tether.apiKey')") == keyed.api_key

    page.reload()  # the key is remembered
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_be_visible()
    expect(page.locator("#key-dialog")).to_have_count(0)
    # the live stream authenticates too: a new run shows up
    fresh = keyed.submit("quick", {"n": 4})
    expect(page.locator(f'tr[data-run-id="{fresh}"]')).to_be_visible()
