"""Signed approvals, single and dual-key, with deadlines.

For the policy engine: ``request_approval(scope, call, reason=..., rule=ApprovalRule(...))``
parks the run on an approval request for the exact call; ``granted(scope, call)`` returns the
approved, signature-verified request for exactly that call (used by that call until its
outcome is journaled), or None, and refuses a rejected one with ``PolicyViolationError`` each
time the call is made.

For people: ``Approvals(runtime_or_store)`` lists, shows, approves and rejects (each decision an
Ed25519 signature over the exact intent: ``sign(private_key, approval)``), and registers
approvers (``register_approver(id, role, public_key, tenant=...)``): a request is decided only by
approvers of its run's tenant (``approvals_tenant``; another's decision is refused with
``ApprovalTenantError``). Importing this module registers the deadline timer handler
(``approval_deadline``).
"""

from __future__ import annotations

from tether.governance import approvals_deadline as _deadline  # registers the timer handler
from tether.governance.approvals_api import Approvals
from tether.governance.approvals_keys import (
    canonical,
    generate_key,
    intent_hash,
    key_file,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
    sign,
    verify,
)
from tether.governance.approvals_request import (
    APPROVAL_DEADLINE,
    approval_store,
    intent_of,
    request_approval,
)
from tether.governance.approvals_rule import ApprovalRule, Escalate
from tether.governance.approvals_tenant import ApprovalTenantError
from tether.governance.approvals_use import granted
from tether.store.approvals import ApprovalRecord, ApprovalStore, Approver

approval_deadline = _deadline.approval_deadline

__all__ = [
    "APPROVAL_DEADLINE",
    "ApprovalRecord",
    "ApprovalRule",
    "ApprovalStore",
    "ApprovalTenantError",
    "Approvals",
    "Approver",
    "Escalate",
    "approval_deadline",
    "approval_store",
    "canonical",
    "generate_key",
    "granted",
    "intent_hash",
    "intent_of",
    "key_file",
    "load_private_key",
    "load_public_key",
    "private_pem",
    "public_pem",
    "request_approval",
    "sign",
    "verify",
]
