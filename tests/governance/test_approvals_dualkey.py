"""Dual-key signed approvals: a governed refund parks ESCALATED on an approval request and runs
only once two distinct registered approvers signed exactly its intent."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.governance.approvals_app import SENT, Recorded, build
from tether import RunStatus, Runtime
from tether.core.errors import (
    ApprovalNotFoundError,
    ApprovalSignatureError,
    ApprovalStateError,
)
from tether.core.governor import GovernedCall
from tether.governance import ApprovalRecord, ApprovalRule, Approvals, RunScope
from tether.governance.approvals import generate_key, granted, sign
from tether.governance.scope import AuditSink
from tether.store.memory import MemoryStore
from tether.store.types import Commit
from tether.testing.clock import FakeClock

DUAL = ApprovalRule(roles=("finance", "ops"), required=2)


@pytest.fixture(autouse=True)
def _clear() -> None:
    SENT.clear()


class Keys:
    def __init__(self) -> None:
        self.alice, self.bob, self.carol, self.mallory = (generate_key() for _ in range(4))


async def setup(ap: Approvals) -> Keys:
    k = Keys()
    await ap.register_approver("alice", "finance", k.alice)
    await ap.register_approver("bob", "ops", k.bob)
    await ap.register_approver("carol", "finance", k.carol)
    return k


async def park(rt: Runtime, wf: Any, amount: int = 40, times: int = 1) -> tuple[str, str]:
    res = await rt.run(wf, {"amount": amount, "times": times})
    assert res.status is RunStatus.ESCALATED
    esc = res.escalation
    assert esc is not None and esc["kind"] == "approval"
    details = esc["details"]
    assert details["intent"]["tool"] == "refund"
    assert details["intent"]["args"] == {"amount": amount}
    assert details["required"] == 2
    return res.run_id, details["approval_id"]


async def test_one_approval_is_not_enough_and_the_same_approver_twice_neither() -> None:
    clock = FakeClock()
    audit = Recorded()
    wf = build(DUAL, audit)
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        k = await setup(ap)
        run_id, aid = await park(rt, wf)
        rec = await ap.get(aid)
        assert (rec.status, rec.intent["run_id"], rec.reason) == (
            "pending",
            run_id,
            "refunds need sign-off",
        )
        after = await ap.approve(aid, "alice", sign(k.alice, rec, now=clock.now()))
        assert after.status == "pending"
        assert (await rt.get_run(run_id)).status is RunStatus.ESCALATED
        with pytest.raises(ApprovalStateError, match="different approver"):
            await ap.approve(aid, "alice", sign(k.alice, rec, now=clock.now()))
        assert (await ap.get(aid)).status == "pending"
        assert SENT == []
        assert "approval.requested" in audit.kinds


async def test_forged_expired_and_other_argument_signatures_are_refused() -> None:
    clock = FakeClock()
    wf = build(DUAL)
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        k = await setup(ap)
        _, aid = await park(rt, wf)
        rec = await ap.get(aid)
        other = dataclasses.replace(rec, intent={**rec.intent, "args": {"amount": 10_000}})
        with pytest.raises(ApprovalSignatureError, match="does not verify"):
            await ap.approve(aid, "bob", sign(k.bob, other, now=clock.now()))
        with pytest.raises(ApprovalSignatureError, match="does not verify"):  # mallory's key
            await ap.approve(aid, "bob", sign(k.mallory, rec, now=clock.now()))
        with pytest.raises(ApprovalSignatureError, match="does not verify"):  # a reject signed
            await ap.approve(aid, "bob", sign(k.bob, rec, "reject", now=clock.now()))
        with pytest.raises(ApprovalSignatureError, match="expired"):
            await ap.approve(aid, "bob", sign(k.bob, rec, expires_at=clock.now() - 1))
        with pytest.raises(ApprovalSignatureError, match="malformed"):
            await ap.approve(aid, "bob", "ed25519:1e20:not-base64!!")
        with pytest.raises(ApprovalSignatureError, match="not registered"):
            await ap.approve(aid, "mallory", sign(k.mallory, rec, now=clock.now()))
        with pytest.raises(ApprovalNotFoundError):
            await ap.approve("apr_nope", "bob", sign(k.bob, rec, now=clock.now()))
        assert (await ap.get(aid)).decisions == []


async def test_a_signature_that_never_expires_is_refused() -> None:
    """Before: a token whose expiry was NaN (``--valid-for nan``, or crafted) verified and never
    expired (NaN compares false with the clock), an infinite one neither."""
    import base64

    from tether.core.errors import InvalidInputError
    from tether.governance.approvals_keys import payload

    clock = FakeClock()
    wf = build(DUAL)
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        k = await setup(ap)
        _, aid = await park(rt, wf)
        rec = await ap.get(aid)
        for forever in ("nan", "inf"):
            until = float(forever)
            raw = k.bob.sign(payload(aid, rec.intent, "approve", until))
            token = f"ed25519:{forever}:{base64.urlsafe_b64encode(raw).decode()}"
            with pytest.raises(ApprovalSignatureError, match="not a finite time"):
                await ap.approve(aid, "bob", token)
            with pytest.raises(InvalidInputError, match="finite"):
                sign(k.bob, rec, valid_for=until, now=clock.now())
            with pytest.raises(InvalidInputError, match="finite"):
                sign(k.bob, rec, expires_at=until)
        assert (await ap.get(aid)).decisions == []


async def test_cancelling_a_run_voids_its_pending_requests_and_late_decisions_are_refused() -> None:
    """Before: after the run was cancelled its request stayed pending, and a late approver
    could still approve it (status approved, for nothing that waits)."""
    clock = FakeClock()
    wf = build(DUAL)
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock) as rt:
        k = await setup(rt.approvals)
        run_id, aid = await park(rt, wf)
        rec = await rt.approvals.get(aid)
        await rt.approvals.approve(aid, "alice", sign(k.alice, rec, now=clock.now()))
        await rt.cancel(run_id, reason="the customer withdrew")
        after = await rt.approvals.get(aid)  # void at once: off the pending list
        assert after.status == "void" and after.history[-1]["why"] == "the run is CANCELLED"
        assert [d["approver"] for d in after.decisions] == ["alice"]
        assert await rt.approvals.list(status="pending") == []
        with pytest.raises(ApprovalStateError, match="void already"):
            await rt.approvals.approve(aid, "bob", sign(k.bob, rec, now=clock.now()))

        # a run that ended where no cancel hook ran (another process, no governance imported):
        # the first signed decision finds it ended, refuses, and voids the request
        other_run, other = await park(rt, wf, amount=7)
        run = await rt.get_run(other_run)
        await rt.store.commit(
            other_run,
            None,
            Commit(
                status=RunStatus.CANCELLED,
                transitions=[(run.status, RunStatus.CANCELLED, "elsewhere", "cancelled")],
            ),
        )
        rec2 = await rt.approvals.get(other)
        assert rec2.status == "pending"
        with pytest.raises(ApprovalStateError, match=f"its run {other_run} is CANCELLED"):
            await Approvals(rt.store).approve(other, "bob", sign(k.bob, rec2, now=clock.now()))
        assert (await rt.approvals.get(other)).status == "void"
        assert SENT == []


async def test_a_valid_pair_releases_exactly_that_call_once() -> None:
    clock = FakeClock()
    audit = Recorded()
    wf = build(DUAL, audit)
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        k = await setup(ap)
        run_id, aid = await park(rt, wf, amount=40, times=2)  # the same refund, twice
        rec = await ap.get(aid)
        await ap.approve(aid, "alice", sign(k.alice, rec, now=clock.now()))
        done = await ap.approve(aid, "bob", sign(k.bob, rec, now=clock.now()))
        assert done.status == "approved"
        res = await rt.wait(run_id, timeout=60)
        # the first call ran; the identical second call needs an approval of its own
        assert SENT == [40]
        assert res.status is RunStatus.ESCALATED
        assert res.escalation is not None
        second = res.escalation["details"]["approval_id"]
        assert second != aid
        used = await ap.get(aid)
        assert used.used_at is not None and used.status == "approved"
        rec2 = await ap.get(second)
        await ap.approve(second, "carol", sign(k.carol, rec2, now=clock.now()))
        await ap.approve(second, "bob", sign(k.bob, rec2, now=clock.now()))
        final = await rt.wait(run_id, timeout=60)
    assert final.status is RunStatus.COMPLETED
    assert final.state["out"] == ["refunded 40", "refunded 40"]
    assert SENT == [40, 40]
    assert "approval.used" in audit.kinds and "approval.approve" in audit.kinds


async def test_an_approval_over_other_arguments_does_not_authorise_the_call() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    wf = build(DUAL)
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        ap = Approvals(store)  # records decisions only: the test resumes
        k = await setup(ap)
        run_id, aid = await park(rt, wf, amount=40)
        rec = await ap.get(aid)
        await ap.approve(aid, "alice", sign(k.alice, rec, now=clock.now()))
        await ap.approve(aid, "bob", sign(k.bob, rec, now=clock.now()))
        run = await rt.get_run(run_id)
        assert run.status is RunStatus.ESCALATED  # nobody resumed it

        scope = RunScope(run, store, clock, Ctx(rec), AuditSink())
        other = GovernedCall("tool", "refund", {"amount": 41}, key=rec.intent["call_key"])
        assert await granted(scope, other) is None
        same = GovernedCall("tool", "refund", {"amount": 40}, key=rec.intent["call_key"])
        got = await granted(scope, same)
        assert isinstance(got, ApprovalRecord) and got.approval_id == aid
        # asked again before its outcome is journaled, it is the same call, retried
        again = await granted(scope, same)
        assert again is not None and again.approval_id == aid
        key = rec.intent["call_key"]
        await store.record_intent(run_id, key, "tool", {"tool": "refund", "args": {"amount": 40}})
        await store.record_result(run_id, key, result="refunded 40")
        assert await granted(scope, same) is None  # its call ran: used, once


async def test_a_signature_that_no_longer_verifies_voids_the_approval() -> None:
    clock = FakeClock()
    wf = build(DUAL)
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt.store)  # records only: the test resumes
        k = await setup(ap)
        run_id, aid = await park(rt, wf)
        rec = await ap.get(aid)
        await ap.approve(aid, "alice", sign(k.alice, rec, now=clock.now()))
        await ap.approve(aid, "bob", sign(k.bob, rec, valid_for=60, now=clock.now()))
        clock.advance(61)  # bob's signature expires before the call runs
        res = await rt.resume(run_id)
        assert res.status is RunStatus.ESCALATED  # a new request: the old one is void
        assert res.escalation is not None and res.escalation["details"]["approval_id"] != aid
        assert (await ap.get(aid)).status == "void"
        assert SENT == []


async def test_a_rejection_resumes_the_run_and_the_planner_gets_the_denial() -> None:
    clock = FakeClock()
    wf = build(DUAL)
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        k = await setup(ap)
        run_id, aid = await park(rt, wf)
        rec = await ap.get(aid)
        out = await ap.reject(aid, "bob", sign(k.bob, rec, "reject", now=clock.now()), "no")
        assert out.status == "rejected"
        res = await rt.wait(run_id, timeout=60)
        with pytest.raises(ApprovalStateError, match="rejected already"):
            await ap.approve(aid, "alice", sign(k.alice, rec, now=clock.now()))
    assert res.status is RunStatus.COMPLETED
    assert res.state["out"] == ["PolicyViolationError"]
    assert SENT == []


class Ctx:
    """The calling node's identity, as a RunContext would give it."""

    def __init__(self, rec: ApprovalRecord) -> None:
        self.step, self.node = rec.intent["step"], rec.intent["node"]

    def emit(self, type: str, data: dict[str, Any]) -> None:
        pass
