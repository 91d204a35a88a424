"""``tether demo`` end to end: the support copilot refunds a duplicate charge exactly once.

The scripted model keeps these deterministic; one test runs the bundled SmolLM2 and MiniLM.
Crashes are real: the demo SIGKILLs its own process (``--crash-after``) and another process
continues the run from the store.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tether.demo.copilot import TENANT, order_id_of
from tether.demo.narrate import compress
from tether.demo.payments import PaymentProvider
from tether.demo.session import DemoOptions, DemoOutcome, run_demo, store_url
from tether.governance import StoreAuditLog, verify_audit
from tether.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
HANG = 600  # seconds: bounds a hang, never what a test measures


def tether(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )


def demo(tmp: Path, ask: Any = None, **kw: Any) -> DemoOutcome:
    opts = DemoOptions(directory=tmp / "demo", model="scripted", **kw)
    console = Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115
    try:
        return asyncio.run(run_demo(opts, console, ask))
    finally:
        console.file.close()


async def _audit_kinds(db: Path, run_id: str) -> tuple[list[str], bool]:
    store = SqliteStore(str(db))
    try:
        page = await StoreAuditLog(store).records(run_id=run_id, limit=500)
        check = await verify_audit(store, TENANT)
        return [r.kind for r in page.records], check.ok
    finally:
        await store.close()


def test_the_scripted_demo_refunds_once_after_approval_and_the_stutter_trip(
    tmp_path: Path,
) -> None:
    out = demo(tmp_path, auto_approve=True)
    assert out.status.value == "COMPLETED"
    [refund] = out.refunds  # exactly one refund in the provider's ledger
    assert (refund.order_id, refund.charge_id, refund.amount_cents) == (1234, "ch_1234_9c1e", 14900)
    assert refund.settled
    assert refund.requests == 4  # 3 before the trip, 1 after the lead raised the limit
    assert out.tally.trips == [
        "stutter: 3 identical refund_payment calls, call 4 stopped before it ran"
    ]
    assert len(out.tally.approvals) == 1
    assert "ESCALATED" in out.tally.lifecycle
    assert "$149.00" in out.state["reply"] and "rf_1234_9c1e" in out.state["reply"]
    kinds, chain_ok = asyncio.run(_audit_kinds(tmp_path / "demo" / "tether.db", out.run_id))
    assert "approval.requested" in kinds and "approval.used" in kinds
    assert any(k.startswith("approval.approve") for k in kinds)
    assert "loop_guard.trip" in kinds
    assert chain_ok  # the approval sits in an intact hash chain


def test_a_declined_approval_refunds_nothing(tmp_path: Path) -> None:
    asked: list[str] = []

    def no(question: str) -> bool:
        asked.append(question)
        return False

    out = demo(tmp_path, ask=no)
    assert out.status.value == "COMPLETED"
    assert out.refunds == []
    assert len(asked) == 1 and "$149.00" in asked[0]
    assert "could not complete" in out.state["reply"]


@pytest.mark.parametrize(
    ("ticket", "problem"),
    [
        ("I was charged twice for order #1235, please refund", "no duplicate charge"),
        ("I was charged twice for order #9999, please refund", "was not found"),
        ("I was charged twice, please refund me", "names no order number"),
    ],
)
def test_tickets_that_must_not_refund(tmp_path: Path, ticket: str, problem: str) -> None:
    out = demo(tmp_path, auto_approve=True, ticket=ticket)
    assert out.status.value == "COMPLETED"
    assert out.refunds == []
    assert problem in out.state["problem"]


def test_another_intent_goes_straight_to_a_reply(tmp_path: Path) -> None:
    out = demo(tmp_path, auto_approve=True, ticket="Where is my order #1234? Has it shipped?")
    assert out.status.value == "COMPLETED"
    assert out.state["intent"] == "order_status"
    assert out.refunds == [] and "proposal" not in out.state


@pytest.mark.parametrize("crash_after", [3, 6, 9])
def test_crash_after_then_continue_gives_one_refund(tmp_path: Path, crash_after: int) -> None:
    d = tmp_path / "demo"
    args = ["demo", "--model", "scripted", "--auto-approve", "--dir", str(d)]
    first = tether(*args, "--crash-after", str(crash_after), cwd=tmp_path)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert f"after step {crash_after}" in first.stdout
    assert f"tether demo --dir {d}" in first.stdout
    second = tether(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert "continuing" in second.stdout and "COMPLETED" in second.stdout
    [refund] = PaymentProvider(d / "payments.db").refunds()
    assert refund.amount_cents == 14900 and refund.settled

    async def runs() -> int:
        store = SqliteStore(str(d / "tether.db"))
        try:
            return len(await store.list_runs())
        finally:
            await store.close()

    assert asyncio.run(runs()) == 1  # the same run went on, no second one


def test_without_a_terminal_it_waits_for_the_support_lead(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    base = ["demo", "--model", "scripted", "--dir", str(d)]
    first = tether(*base, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    line = next(ln for ln in first.stdout.splitlines() if "tether approvals approve" in ln)
    approve = shlex.split(line.strip())
    assert approve[:3] == ["tether", "approvals", "approve"]
    signed = tether(*approve[1:], cwd=tmp_path)  # the support lead signs with the key file
    assert signed.returncode == 0, signed.stdout + signed.stderr
    second = tether(*base, cwd=tmp_path)  # goes on until the stuttering check stops it
    assert second.returncode == 0, second.stderr[-2000:]
    assert "stuttering check" in second.stdout and "--auto-approve" in second.stdout
    assert len(PaymentProvider(d / "payments.db").refunds()) == 1
    third = tether(*base, "--auto-approve", cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "COMPLETED" in third.stdout
    [refund] = PaymentProvider(d / "payments.db").refunds()
    assert refund.requests == 4 and refund.settled


def test_the_bundled_model_runs_the_demo_end_to_end(tmp_path: Path) -> None:
    """SmolLM2 on llama.cpp and MiniLM, offline: the words differ, the money does not."""
    d = tmp_path / "demo"
    res = tether("demo", "--auto-approve", "--dir", str(d), cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "COMPLETED" in res.stdout
    assert "stutter: 3 identical refund_payment calls" in res.stdout
    assert re.search(r"model\s+│ [1-9]\d* calls", res.stdout)
    [refund] = PaymentProvider(d / "payments.db").refunds()
    assert (refund.order_id, refund.amount_cents, refund.requests) == (1234, 14900, 4)
    assert store_url(d).endswith("tether.db")


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("charged twice for order #1234", 1234),
        ("order number 1235 please", 1235),
        ("ORDER 4321 was double billed", 4321),
        ("order #12", None),  # too short to be an order number
        ("I paid $1234 twice", None),  # an amount is not an order
    ],
)
def test_order_numbers_come_from_the_ticket_by_pattern(text: str, order: int | None) -> None:
    assert order_id_of(text) == order


def test_lifecycle_paths_fold_their_back_and_forth() -> None:
    path = ["R", "P", "E", "W", "E", "W", "E", "W", "ES", "E", "W", "C"]
    assert compress(path) == ["R", "P", "(E ⇄ W) x3", "ES", "E", "W", "C"]
