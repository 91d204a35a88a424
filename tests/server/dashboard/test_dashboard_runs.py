"""The dashboard in headless Chromium against a real server: a run's graph and steps, an
approval signed in the browser that lets the run finish, an interrupt answered, a fork."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.server.dashboard.conftest import shot
from tests.server.dashboard.server import Served


def open_run(page: Page, served: Served, run_id: str, tab: str = "") -> None:
    page.goto(f"{served.base}/runs/{run_id}" + (f"?tab={tab}" if tab else ""))
    expect(page.locator("#run-head h1")).to_have_text(run_id)


def test_approve_a_pending_approval_and_the_run_completes(page: Page, served: Served) -> None:
    run_id = served.submit("refunds", {"amount": 40})
    served.wait(run_id, "ESCALATED")
    open_run(page, served, run_id)

    expect(page.locator("#run-status")).to_have_attribute("data-status", "ESCALATED")
    # the graph: every node drawn, the edges, the node the run waits in highlighted
    for node in ("__start__", "plan", "pay", "report", "__end__"):
        expect(page.locator(f'#graph [data-node="{node}"]')).to_have_count(1)
    assert page.locator("#graph .g-edge").count() >= 5
    expect(page.locator('#graph [data-node="pay"]')).to_have_class("g-node current waiting")
    expect(page.locator('#graph [data-node="plan"]')).to_contain_class("visited")
    # the steps: the input checkpoint and the planner's step
    expect(page.locator("#timeline .step-row")).to_have_count(2)
    expect(page.locator('#timeline .step-row[data-step="1"]')).to_contain_text("plan")
    # the state at step 1 and its diff against step 0
    expect(page.locator("#state-tree")).to_contain_text("refund 40 to the customer")
    page.keyboard.press("2")
    expect(page.locator("#state-diff .d-row.add")).to_contain_text("plan")
    page.keyboard.press("1")

    card = page.locator(".approval")
    expect(card).to_contain_text("refund")
    expect(card).to_contain_text('"amount": 40')
    shot(page, "approval-pending")
    card.locator("input.approver").fill("alice")
    card.locator("input.key-file").set_input_files(str(served.key_file))
    expect(card.locator(".key-state")).to_have_text("key loaded ✓")
    card.locator("button.approve").click()

    expect(page.locator("#run-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=90_000
    )
    expect(page.locator("#state-tree")).to_contain_text("done: refunded 40")
    expect(page.locator('#graph [data-node="pay"]')).to_contain_class("visited")
    expect(page.locator("#timeline .step-row")).to_have_count(4)
    assert served.run(run_id)["state"]["report"] == "done: refunded 40"
    shot(page, "approval-completed")


def test_a_wrong_key_is_refused_with_the_servers_reason(page: Page, served: Served) -> None:
    run_id = served.submit("refunds", {"amount": 41})
    served.wait(run_id, "ESCALATED")
    open_run(page, served, run_id)
    card = page.locator(".approval")
    card.locator("input.approver").fill("mallory")
    card.locator("input.sig").fill("ed25519:9999999999.0:AAAA")
    card.locator("button.approve").click()
    expect(card.locator(".approval-error")).to_contain_text("mallory")
    assert served.run(run_id)["status"] == "ESCALATED"


def test_resume_an_interrupt_with_a_value(page: Page, served: Served) -> None:
    run_id = served.submit("ask", {"question": "ship it?"})
    served.wait(run_id, "ESCALATED")
    open_run(page, served, run_id)
    notice = page.locator(".notice.interrupt")
    expect(notice).to_contain_text("ship it?")
    expect(page.locator('#graph [data-node="ask_human"]')).to_contain_class("current")
    notice.locator("textarea.resume-value").fill('"yes, ship"')
    notice.locator("button.resume").click()
    expect(page.locator("#run-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=90_000
    )
    expect(page.locator("#state-tree")).to_contain_text("the human said yes, ship")


def test_fork_from_a_step_with_a_patch(page: Page, served: Served) -> None:
    run_id = served.submit("refunds", {"amount": 5})
    served.wait(run_id, "COMPLETED")
    open_run(page, served, run_id)
    page.locator('#timeline .step-row[data-step="0"]').click()
    expect(page.locator("#state-panel .state-bar")).to_contain_text("State after step 0")
    page.locator("#fork-from-step").click()
    expect(page.locator("#fork-step")).to_have_value("0")
    page.locator("#fork-patch").fill("{not json")
    page.get_by_role("button", name="Fork", exact=True).click()
    expect(page.locator("dialog .error")).to_contain_text("not valid JSON")
    page.locator("#fork-patch").fill(json.dumps({"amount": 7}))
    page.get_by_role("button", name="Fork", exact=True).click()

    expect(page.locator("#run-head")).to_contain_text("forked from")
    forked = page.locator("#run-head h1").inner_text()
    assert forked != run_id
    run = served.wait(forked, "COMPLETED")
    assert run["parent_run_id"] == run_id
    assert run["state"]["amount"] == 7
    expect(page.locator("#run-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=90_000
    )


def test_a_failed_run_shows_its_error_and_where_it_stopped(page: Page, served: Served) -> None:
    run_id = served.submit("crash", {"why": "timeout"})
    served.wait(run_id, "FAILED")
    open_run(page, served, run_id)
    expect(page.locator("#run-error")).to_contain_text("the payment provider is down (timeout)")
    expect(page.locator('#graph [data-node="explode"]')).to_contain_class("failed")


def test_reject_from_the_approvals_page(page: Page, served: Served) -> None:
    run_id = served.submit("refunds", {"amount": 50})
    served.wait(run_id, "ESCALATED")
    page.goto(f"{served.base}/approvals")
    card = page.locator("#approvals-list .approval").filter(
        has=page.locator(f'a[href="/runs/{run_id}"]')
    )
    expect(card).to_contain_text('"amount": 50')
    card.locator("input.approver").fill("alice")
    card.locator("input.key-file").set_input_files(str(served.key_file))
    card.locator("input.reason").fill("wrong customer")
    card.locator("button.reject").click()
    decided = page.locator("#decided-list .approval").filter(
        has=page.locator(f'a[href="/runs/{run_id}"]')
    )
    expect(decided).to_contain_text("rejected")
    expect(decided).to_contain_text("alice: reject")
    run = served.wait(run_id, "COMPLETED")
    assert run["state"]["receipt"].startswith("refused: ")  # the refund call was refused
