"""Approval deadlines: a durable timer (``graph.timers``, kind ``approval_deadline``) per
request and escalation level, fired by any live runtime (``recover=True``).

At the deadline of a still-pending request, its rule's ``on_deadline`` either
- escalates: the eligible approvers become the ``Escalate``'s (approvals already given count
  only if their approver is among them), a new deadline (and timer) is set when it has one, the
  run's escalation details name the new approvers, an ``approval_escalated`` event goes on the
  run's stream and ``approval.escalated`` to the audit sink; or
- rejects: the request is rejected by its deadline and the run resumes; the call is refused
  (``PolicyViolationError`` to the planner).
A request whose run has ended is voided. The handler tolerates running twice: it acts only on
the level its timer was set for.
"""

from __future__ import annotations

from typing import Any

from tether.core.errors import RunNotFoundError
from tether.core.lifecycle import FINISHED
from tether.governance.approvals_request import (
    APPROVAL_DEADLINE,
    add_deadline_timer,
    approval_store,
)
from tether.governance.approvals_resume import (
    audit_outside,
    note_on_run,
    resume_decided,
    waits_for,
)
from tether.governance.approvals_rule import ApprovalRule
from tether.governance.approvals_tally import who
from tether.governance.approvals_void import mark_void
from tether.graph.timers import register_handler
from tether.store.approvals import PENDING, REJECTED, ApprovalRecord
from tether.store.timers import Timer


async def approval_deadline(rt: Any, timer: Timer) -> None:
    store = approval_store(rt.store)
    rec = await store.get_approval(timer.payload["approval_id"])
    if rec is None or rec.status != PENDING or rec.level != timer.payload.get("level"):
        return  # decided in time, or escalated already
    now = rt.clock.now()
    try:
        run = await rt.store.get_run(rec.run_id)
    except RunNotFoundError:
        run = None
    if run is None or run.status in FINISHED:
        mark_void(rec, now, "the run has ended")
        await store.update_approval(rec)
        return
    rule = ApprovalRule.from_dict(rec.rule)
    nxt = rule.escalated()
    if nxt is None:
        await _reject(rt, rec, now)
        return
    before = who(rec.rule)
    rec.rule = nxt.to_dict()
    rec.level += 1
    rec.deadline_at = None if nxt.deadline is None else now + nxt.deadline
    rec.history.append({"what": "escalated", "at": now, "from": before, "to": who(rec.rule)})
    if not await store.update_approval(rec):
        raise RuntimeError(f"approval {rec.approval_id} changed while escalating; retried later")
    rec.version += 1
    await add_deadline_timer(store, rec)
    data = {
        "approval_id": rec.approval_id,
        "from": before,
        "to": who(rec.rule),
        "level": rec.level,
        "deadline_at": rec.deadline_at,
    }
    await audit_outside(rt, run, "approval.escalated", data)
    if waits_for(run, rec.approval_id):
        details = {
            "approvers": who(rec.rule),
            "required": rec.rule["required"],
            "deadline_at": rec.deadline_at,
            "level": rec.level,
        }
        await note_on_run(rt, run, "approval_escalated", data, details)


async def _reject(rt: Any, rec: ApprovalRecord, now: float) -> None:
    store = approval_store(rt.store)
    rec.status = REJECTED
    why = f"no decision by the deadline ({who(rec.rule)})"
    rec.decisions.append(
        {"approver": "(deadline)", "role": "", "decision": "reject", "at": now, "reason": why}
    )
    rec.history.append({"what": "rejected", "at": now, "by": "(deadline)", "reason": why})
    if not await store.update_approval(rec):
        raise RuntimeError(f"approval {rec.approval_id} changed while rejecting; retried later")
    run = await rt.store.get_run(rec.run_id)
    await audit_outside(rt, run, "approval.rejected", {"approval_id": rec.approval_id, "why": why})
    await resume_decided(rt, rec, "timer", execute=False)


register_handler(APPROVAL_DEADLINE, approval_deadline)
