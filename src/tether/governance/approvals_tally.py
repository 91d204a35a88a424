"""Who may decide on a request, and whether its approvals are enough.

A request's ``rule`` (``ApprovalRule.to_dict()``, replaced by a deadline escalation) names the
eligible approvers. An approval counts when its approver is eligible under the request's rule
*now*; ``required`` of them must come from distinct approvers holding distinct keys (one key
registered under two ids is one approver), and with ``distinct_roles`` from distinct roles.
``verified`` re-checks every counted signature against the keys of the approvers registered for
the run's tenant (``approvals_tenant``) and the intent of the call about to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tether.core.errors import ApprovalSignatureError, InvalidInputError
from tether.governance.approvals_keys import verify
from tether.governance.approvals_tenant import whose
from tether.store.approvals import ApprovalRecord, ApprovalStore, Approver


def may_decide(rule: Mapping[str, Any], approver_id: str, role: str) -> bool:
    roles, ids = rule.get("roles") or [], rule.get("approvers") or []
    if not roles and not ids:
        return True
    return role in roles or approver_id in ids


def who(rule: Mapping[str, Any]) -> str:
    """The eligible approvers, in words."""
    roles, ids = rule.get("roles") or [], rule.get("approvers") or []
    parts = [f"role {r!r}" for r in roles] + [f"approver {a!r}" for a in ids]
    return " or ".join(parts) or "any registered approver"


def complete(rule: Mapping[str, Any], approvals: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``approvals`` (decisions with ``approver``, ``role``, ``key``) satisfy ``rule``."""
    ids: set[str] = set()
    keys: set[str] = set()
    roles: set[str] = set()
    for d in approvals:
        if d.get("decision") != "approve" or not may_decide(rule, d["approver"], d["role"]):
            continue
        if d["approver"] in ids or d.get("key") in keys:
            continue
        ids.add(d["approver"])
        keys.add(d.get("key", ""))
        roles.add(d["role"])
    need = int(rule.get("required", 1))
    if len(ids) < need:
        return False
    return not rule.get("distinct_roles") or len(roles) >= need


async def verified(
    store: ApprovalStore,
    rec: ApprovalRecord,
    intent: dict[str, Any],
    now: float,
    tenant: str | None,
) -> tuple[bool, str]:
    """Whether ``rec``'s approvals, each re-verified against the key its approver has as an
    approver of ``tenant`` (the run's, now) and ``intent`` (the call about to run) and
    unexpired at ``now``, still satisfy its rule; with the reason when not."""
    good: list[dict[str, Any]] = []
    why = "not enough approvals"
    for d in rec.decisions:
        if d.get("decision") != "approve":
            continue
        approver: Approver | None = await store.get_approver(d["approver"], tenant)
        if approver is None:
            why = f"approver {d['approver']!r} is no longer registered for {whose(tenant)}"
            continue
        try:
            verify(approver.public_key, rec.approval_id, intent, "approve", d["signature"], now)
        except (ApprovalSignatureError, InvalidInputError) as exc:
            why = f"{d['approver']}: {exc}"
            continue
        good.append({**d, "role": approver.role, "key": approver.public_key})
    ok = complete(rec.rule, good)
    return ok, "" if ok else why
