"""``granted(scope, call)``: is this exact call (its intent: tool, arguments, run, step, node,
journal key; ``approvals_request.intent_of``) approved? The policy engine asks before it
requests an approval for an escalated call.

- A request for the call that was **rejected** (by an approver, or by its deadline) refuses it
  with ``PolicyViolationError``, each time the call is made: a replay of its node (the run
  resumed for a later approval, or recovered) is refused again, never asked anew.
- An **approved** request, its signatures verified against the approvers' registered keys and
  the call, is used (``used_at``) and authorises that call until the call's outcome is
  journaled: a retry of it (an idempotent call after a crash, or one a human sent back with
  ``resume(run_id, {"retry": True})``) runs on the same approval, its signatures judged as of
  its first use. An identical second call (another journal key) needs an approval of its own.
- An approval whose call a later part of governance refused (the budget) is **given back**
  (``used_at`` cleared, ``released`` in its history): the call never ran.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from tether.core.errors import PolicyViolationError
from tether.core.governor import GovernedCall
from tether.core.journal import MANUAL_RETRY
from tether.governance.approvals_keys import intent_hash
from tether.governance.approvals_request import approval_store, intent_of
from tether.governance.approvals_tally import verified
from tether.governance.scope import RunScope, on_refused
from tether.store.approvals import APPROVED, REJECTED, VOID, ApprovalRecord, ApprovalStore


async def granted(scope: RunScope, call: GovernedCall) -> ApprovalRecord | None:
    """The approved request for exactly this call, verified now and marked used; None when
    there is none. A rejected one raises ``PolicyViolationError`` (see the module)."""
    store = approval_store(scope.store)
    intent = intent_of(scope, call)
    h = intent_hash(intent)
    found = await store.list_approvals(intent_hash=h, run_id=scope.run.run_id, limit=20)
    for rec in found:
        if rec.status == REJECTED:
            await _deny(scope, store, rec, call)
    for rec in found:
        if rec.status != APPROVED:
            continue
        again = rec.used_at is not None
        if again and not await _unfinished(scope, call):
            continue  # it released this call, whose outcome is journaled: spent
        now = scope.clock.now()
        ok, why = await verified(store, rec, intent, _first_use(rec, now), scope.run.tenant)
        if not ok:
            rec.status = VOID
            rec.history.append({"what": "void", "at": now, "why": why})
            if await store.update_approval(rec):
                await scope.audit("approval.void", {"approval_id": rec.approval_id, "why": why})
            continue
        rec.used_at = rec.used_at if again else now
        rec.history.append({"what": "used", "at": now, "call_key": call.key, "again": again})
        late = _take_late(rec)
        if await store.update_approval(rec):
            rec.version += 1
            await audit_late_decisions(scope, rec, late)
            if not again:
                on_refused(call, _give_back(scope, rec.approval_id))
            data = {"approval_id": rec.approval_id, "intent_hash": h}
            await scope.audit("approval.used", {**data, "again": True} if again else data)
            return rec
    return None


async def _deny(
    scope: RunScope, store: ApprovalStore, rec: ApprovalRecord, call: GovernedCall
) -> NoReturn:
    """Refuse the call ``rec`` rejected: the first time noted on the request, every time
    audited and raised."""
    first = rec.used_at is None
    if first:
        now = scope.clock.now()
        rec.used_at = now
        rec.history.append({"what": "denied", "at": now})
        late = _take_late(rec)
        if await store.update_approval(rec):
            await audit_late_decisions(scope, rec, late)
    why = next((d.get("reason", "") for d in rec.decisions[::-1]), "") or "rejected"
    data = {"approval_id": rec.approval_id, "why": why}
    await scope.audit("approval.denied", data if first else {**data, "again": True})
    raise PolicyViolationError(
        f"{call.name}: approval {rec.approval_id} was rejected ({why})", tool=call.name
    )


def _first_use(rec: ApprovalRecord, now: float) -> float:
    """When ``rec`` first released its call (``now`` if never): its signatures were good then."""
    used = [h["at"] for h in rec.history if h.get("what") == "used" and "at" in h]
    return min(used, default=now)


async def _unfinished(scope: RunScope, call: GovernedCall) -> bool:
    """Whether the call (by its journal key) has no outcome journaled: no intent (refused
    after the approval was used, or its process died before the intent), an intent only (it
    died during the call), or an outcome a human sent back to be retried."""
    key = call.effect_key or call.key
    if key is None:
        return False
    effect = await scope.store.get_effect(scope.run.run_id, key)
    if effect is None or effect.status == "pending":
        return True
    return effect.status == "failed" and (effect.error or {}).get("type") == MANUAL_RETRY


def _give_back(scope: RunScope, approval_id: str) -> Callable[[], Awaitable[None]]:
    """Give ``approval_id`` back: the call it released was refused by a later part."""

    async def give_back() -> None:
        await _release(scope, approval_id)

    return give_back


async def _release(scope: RunScope, approval_id: str) -> None:
    store = approval_store(scope.store)
    rec = await store.get_approval(approval_id)
    if rec is None or rec.status != APPROVED or rec.used_at is None:
        return
    now = scope.clock.now()
    rec.used_at = None
    rec.history.append({"what": "released", "at": now, "why": "the call was refused after all"})
    if await store.update_approval(rec):
        await scope.audit("approval.released", {"approval_id": approval_id})


def _take_late(rec: ApprovalRecord) -> list[dict[str, Any]]:
    """The decisions of ``rec`` recorded where the run's audit sink was unknown (a CLI without
    the workflow), marked audited on ``rec``: the run audits them as it writes ``rec``."""
    late = [d for d in rec.decisions if d.get("audited") is False]
    for d in late:
        d["audited"] = True
    return late


async def audit_late_decisions(
    scope: RunScope, rec: ApprovalRecord, late: list[dict[str, Any]]
) -> None:
    """Audit ``late`` (``_take_late``) decisions of ``rec``, once: before the run uses it."""
    for d in late:
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
