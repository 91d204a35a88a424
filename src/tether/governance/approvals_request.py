"""What the policy engine calls: ``request_approval`` (park the run until a human decides) and
``granted`` (``approvals_use``: is this exact call approved? then use the approval).

The **intent** of a call is what an approval authorises: the tool (or model), its canonical
arguments, the run, the step, the node and the call's journal key. A resumed run re-runs its
step with the same intent, so the same request is found again; a call with other arguments is
another intent, which no approval of this one authorises.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

import orjson

from tether.core.errors import ConfigurationError, EscalationSignal
from tether.core.governor import GovernedCall
from tether.governance.approvals_keys import canonical, intent_hash
from tether.governance.approvals_rule import ApprovalRule
from tether.governance.approvals_tally import who
from tether.governance.scope import RunScope
from tether.store.approvals import ApprovalRecord, ApprovalStore
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
