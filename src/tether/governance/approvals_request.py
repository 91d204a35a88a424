"""What the policy engine calls: ``request_approval`` (park the run until a human decides) and
``granted`` (is this exact call approved? then use the approval, once).

The **intent** of a call is what an approval authorises: the tool (or model), its canonical
arguments, the run, the step, the node and the call's journal key. A resumed run re-runs its
step with the same intent, so the same request is found again; a call with other arguments is
another intent, which no approval of this one authorises.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

import orjson

from tether.core.errors import ConfigurationError, EscalationSignal, PolicyViolationError
from tether.core.governor import GovernedCall
from tether.governance.approvals_keys import canonical, intent_hash
from tether.governance.approvals_rule import ApprovalRule
from tether.governance.approvals_tally import verified, who
from tether.governance.scope import RunScope
from tether.store.approvals import APPROVED, REJECTED, VOID, ApprovalRecord, ApprovalStore
from tether.store.timers import Timer, TimerStore

APPROVAL_DEADLINE = "approval_deadline"
"""The timer kind of approval deadlines (``approvals_deadline``)."""


def approval_store(store: Any) -> ApprovalStore:
    if not isinstance(store, ApprovalStore):
        raise ConfigurationError(
            f"{type(store).__name__} keeps no approvals; approvals need the memory, SQLite or "
            "PostgreSQL store"
        )
    return store


def intent_of(scope: RunScope, call: GovernedCall) -> dict[str, Any]:
    """The exact call, as an approval covers it."""
    ctx = scope.ctx
    return {
        "kind": call.kind,
        "tool": call.name,
        "args": orjson.loads(canonical(dict(call.args))),
        "run_id": scope.run.run_id,
        "step": getattr(ctx, "step", None),
        "node": getattr(ctx, "node", None),
        "call_key": call.key,
    }


async def add_deadline_timer(store: Any, rec: ApprovalRecord) -> None:
    """The durable timer that fires ``rec``'s deadline (one per escalation level)."""
    if rec.deadline_at is None:
        return
    if not isinstance(store, TimerStore):
        raise ConfigurationError(
            f"{type(store).__name__} keeps no timers; an approval deadline needs the memory, "
            "SQLite or PostgreSQL store"
        )
    await store.add_timer(
        Timer(
            f"approval/{rec.approval_id}/{rec.level}",
            rec.run_id,
            APPROVAL_DEADLINE,
            rec.deadline_at,
            {"approval_id": rec.approval_id, "level": rec.level},
        )
    )


async def request_approval(
    scope: RunScope, call: GovernedCall, *, reason: str, rule: Any = None
) -> NoReturn:
    """Create (or find, when one is open for this exact call) the approval request and park
    the run: raises ``EscalationSignal(kind="approval", approval_id=..., intent=...)``."""
    r = ApprovalRule.coerce(rule)
    store = approval_store(scope.store)
    intent = intent_of(scope, call)
    now = scope.clock.now()
    new = ApprovalRecord(
        f"apr_{uuid.uuid4().hex}",
        scope.run.run_id,
        intent_hash(intent),
        intent,
        reason,
        r.to_dict(),
        deadline_at=None if r.deadline is None else now + r.deadline,
        history=[{"what": "requested", "at": now, "reason": reason}],
    )
    rec, created = await store.create_approval(new)
    details = {
        "approval_id": rec.approval_id,
        "intent": rec.intent,
        "approvers": who(rec.rule),
        "required": rec.rule.get("required", 1),
        "deadline_at": rec.deadline_at,
    }
    if created:
        await add_deadline_timer(store, rec)
        await scope.audit("approval.requested", {**details, "reason": reason})
        if scope.ctx is not None:
            scope.emit("approval_requested", details)
    raise EscalationSignal(reason, kind="approval", **details)


async def granted(scope: RunScope, call: GovernedCall) -> ApprovalRecord | None:
    """The approved request for exactly this call, its signatures verified now, marked used
    (once: a second identical call needs a new approval); None when there is none.

    A request for this call that was rejected (by an approver, or by its deadline) and not yet
    answered raises ``PolicyViolationError`` once: the planner gets the denial."""
    store = approval_store(scope.store)
    intent = intent_of(scope, call)
    h = intent_hash(intent)
    for rec in await store.list_approvals(intent_hash=h, run_id=scope.run.run_id, limit=20):
        if rec.used_at is not None or rec.status not in (APPROVED, REJECTED):
            continue
        now = scope.clock.now()
        if rec.status == REJECTED:
            rec.used_at = now
            rec.history.append({"what": "denied", "at": now})
            if await store.update_approval(rec):
                await audit_late_decisions(scope, rec)
                why = next((d.get("reason", "") for d in rec.decisions[::-1]), "") or "rejected"
                await scope.audit("approval.denied", {"approval_id": rec.approval_id, "why": why})
                raise PolicyViolationError(
                    f"{call.name}: approval {rec.approval_id} was rejected ({why})",
                    tool=call.name,
                )
            continue
        ok, why = await verified(store, rec, intent, now)
        if not ok:
            rec.status = VOID
            rec.history.append({"what": "void", "at": now, "why": why})
            if await store.update_approval(rec):
                await scope.audit("approval.void", {"approval_id": rec.approval_id, "why": why})
            continue
        rec.used_at = now
        rec.history.append({"what": "used", "at": now, "call_key": call.key})
        if await store.update_approval(rec):
            rec.version += 1
            await audit_late_decisions(scope, rec)
            await scope.audit("approval.used", {"approval_id": rec.approval_id, "intent_hash": h})
            return rec
    return None


async def audit_late_decisions(scope: RunScope, rec: ApprovalRecord) -> None:
    """Audit the decisions recorded where the run's audit sink was unknown (a CLI without the
    workflow): the run audits them before it uses the answer, once (the answer is used once)."""
    for d in rec.decisions:
        if d.get("audited") is False:
            await scope.audit(
                f"approval.{d['decision']}",
                {
                    "approval_id": rec.approval_id,
                    "approver": d["approver"],
                    "status": rec.status,
                    "decided_at": d["at"],
                    "recorded_by_run": True,
                },
            )
