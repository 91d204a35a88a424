"""Refunds above a threshold need a support lead's signed approval; one approval covers the
retries of that same refund in the same run (the stuttering check bounds how many)."""

from __future__ import annotations

from typing import Any

import orjson

from tether.core.governor import GovernedCall
from tether.governance import ApprovalRule, GovernancePart
from tether.governance.approvals import granted, request_approval
from tether.governance.approvals_keys import canonical
from tether.governance.approvals_request import approval_store
from tether.governance.scope import RunScope

APPROVER_ROLE = "support-lead"


class RefundApproval(GovernancePart):
    def __init__(self, tool: str, threshold_cents: int) -> None:
        self.tool = tool
        self.threshold_cents = threshold_cents

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind != "tool" or call.name != self.tool:
            return
        if int(call.args.get("amount_cents", 0)) <= self.threshold_cents:
            return
        if await granted(scope, call) is not None:
            return
        if await self._approved_before(scope, call):
            return
        await request_approval(
            scope,
            call,
            reason=f"refunds above ${self.threshold_cents / 100:,.2f} need a support lead",
            rule=ApprovalRule(roles=(APPROVER_ROLE,)),
        )

    async def _approved_before(self, scope: RunScope, call: GovernedCall) -> bool:
        """An approval of this run for the same tool and arguments was granted and used."""
        args = _canonical(call.args)
        store = approval_store(scope.store)
        for rec in await store.list_approvals(run_id=scope.run.run_id, status="approved"):
            intent = rec.intent
            if (
                rec.used_at is not None
                and intent.get("tool") == call.name
                and _canonical(intent.get("args") or {}) == args
            ):
                return True
        return False


def _canonical(args: Any) -> Any:
    return orjson.loads(canonical(dict(args)))
