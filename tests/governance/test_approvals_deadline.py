"""Approval deadlines on the fake clock: a durable timer escalates the request to the manager
role (the approver set changes; an event and an audit entry say so), or rejects it."""

from __future__ import annotations

import pytest

from tests.governance.approvals_app import SENT, Recorded, build
from tether import RunStatus, Runtime
from tether.core.errors import ApprovalSignatureError, ConfigurationError
from tether.governance import ApprovalRule, Approvals, Escalate
from tether.governance.approvals import APPROVAL_DEADLINE, generate_key, sign
from tether.store.memory import MemoryStore
from tether.store.timers import TimerStore
from tether.testing.clock import FakeClock

T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _clear() -> None:
    SENT.clear()


async def test_the_deadline_escalates_to_the_manager_role() -> None:
    clock = FakeClock(T0)
    audit = Recorded()
    rule = ApprovalRule(roles=("clerk",), deadline=7200, on_deadline=Escalate(roles=("manager",)))
    wf = build(rule, audit)
    store = MemoryStore(clock)
    async with Runtime(store, workflows=[wf], clock=clock, recover=False) as rt:
        ap = Approvals(rt)
        clerk, boss = generate_key(), generate_key()
        await ap.register_approver("cleo", "clerk", clerk)
        await ap.register_approver("max", "manager", boss)
        res = await rt.run(wf, {"amount": 5})
        assert res.status is RunStatus.ESCALATED and res.escalation is not None
        aid = res.escalation["details"]["approval_id"]
        assert res.escalation["details"]["deadline_at"] == T0 + 7200
        rec = await ap.get(aid)
        assert isinstance(store, TimerStore)
        (timer,) = await store.list_timers(res.run_id)
        assert (timer.kind, timer.fire_at) == (APPROVAL_DEADLINE, T0 + 7200)
        with pytest.raises(ApprovalSignatureError, match="role 'clerk'"):  # not yet a manager's
            await ap.approve(aid, "max", sign(boss, rec, now=clock.now()))

        clock.advance(7199)
        assert await rt.fire_timers() == 0
        clock.advance(1)
        assert await rt.fire_timers() == 1
        assert await rt.fire_timers() == 0  # fired once

        rec = await ap.get(aid)
        assert rec.status == "pending" and rec.level == 1
        assert rec.rule["roles"] == ["manager"] and rec.deadline_at is None
        assert [h["what"] for h in rec.history] == ["requested", "escalated"]
        run = await rt.get_run(res.run_id)
        assert run.status is RunStatus.ESCALATED
        assert run.escalation is not None
        assert run.escalation["details"]["approvers"] == "role 'manager'"
        events = [e.type for e in await store.list_events(res.run_id)]
        assert "approval_escalated" in events
        assert "approval.escalated" in audit.kinds

        with pytest.raises(ApprovalSignatureError, match="may not decide"):
            await ap.approve(aid, "cleo", sign(clerk, rec, now=clock.now()))
        await ap.approve(aid, "max", sign(boss, rec, now=clock.now()))
        done = await rt.wait(res.run_id, timeout=60)
    assert done.status is RunStatus.COMPLETED
    assert SENT == [5]


async def test_the_deadline_rejects_and_the_call_is_denied() -> None:
    clock = FakeClock(T0)
    wf = build(ApprovalRule(deadline=60), name="refunds_reject")
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock, recover=False) as rt:
        ap = Approvals(rt)
        res = await rt.run(wf, {"amount": 7})
        assert res.escalation is not None
        aid = res.escalation["details"]["approval_id"]
        clock.advance(60)
        assert await rt.fire_timers() == 1
        rec = await ap.get(aid)
        assert rec.status == "rejected" and rec.decisions[-1]["approver"] == "(deadline)"
        run = await rt.get_run(res.run_id)
        assert run.status is RunStatus.EXECUTING and run.owner is None  # any worker continues
        assert await rt.recover_once() == [res.run_id]
        done = await rt.wait(res.run_id, timeout=60)
    assert done.status is RunStatus.COMPLETED
    assert done.state["out"] == ["PolicyViolationError"]
    assert SENT == []


async def test_an_approval_decided_in_time_ignores_its_deadline() -> None:
    clock = FakeClock(T0)
    wf = build(ApprovalRule(deadline=60), name="refunds_in_time")
    async with Runtime(MemoryStore(clock), workflows=[wf], clock=clock, recover=False) as rt:
        ap = Approvals(rt)
        key = generate_key()
        await ap.register_approver("ann", "clerk", key)
        res = await rt.run(wf, {"amount": 3})
        assert res.escalation is not None
        aid = res.escalation["details"]["approval_id"]
        await ap.approve(aid, "ann", sign(key, await ap.get(aid), now=clock.now()))
        done = await rt.wait(res.run_id, timeout=60)
        clock.advance(60)
        assert await rt.fire_timers() == 1  # fires, finds it decided, does nothing
        assert (await ap.get(aid)).status == "approved"
    assert done.status is RunStatus.COMPLETED and SENT == [3]


def test_rules_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="required"):
        ApprovalRule(required=0)
    with pytest.raises(ConfigurationError, match="seconds"):
        ApprovalRule(deadline=-1)
    with pytest.raises(ConfigurationError, match="'reject' or Escalate"):
        ApprovalRule(on_deadline="escalate")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="at least 2 roles"):
        ApprovalRule(roles=("finance",), required=2, distinct_roles=True)
    # rules whose requests could never be approved, or whose deadline never comes
    for deadline in (float("inf"), float("nan")):
        with pytest.raises(ConfigurationError, match="finite number of seconds"):
            ApprovalRule(deadline=deadline)
        with pytest.raises(ConfigurationError, match="finite number of seconds"):
            Escalate(deadline=deadline)
    with pytest.raises(ConfigurationError, match=r"needs 2 distinct approvers but names only"):
        ApprovalRule(approvers=("alice",), required=2)
    with pytest.raises(ConfigurationError, match=r"names only \['alice'\]"):
        ApprovalRule(approvers=("alice", "alice"), required=2)
    with pytest.raises(ConfigurationError, match="Escalate needs 3 distinct approvers"):
        Escalate(roles=(), approvers=("cfo", "ceo"), required=3)
    assert ApprovalRule(roles=("ops",), approvers=("alice",), required=2).required == 2
    rule = ApprovalRule(
        roles=("a", "b"),
        required=2,
        distinct_roles=True,
        deadline=10,
        on_deadline=Escalate(roles=("m",), deadline=5),
    )
    assert ApprovalRule.from_dict(rule.to_dict()) == rule
    assert ApprovalRule.coerce(None) == ApprovalRule()
    with pytest.raises(ConfigurationError, match="unknown approval rule"):
        ApprovalRule.coerce({"roles": ["a"], "quorum": 2})
