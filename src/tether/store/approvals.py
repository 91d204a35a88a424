"""Approval requests and approvers (``tether.governance.approvals``), as the store keeps them.

An **approval request** is one row per escalated call: ``intent_hash`` names the exact call it
is about (the governance layer computes it from the tool, its canonical arguments, the run, the
step, the node and the call key), ``status`` is ``pending`` until enough approvers signed
(``approved``), one rejected or its deadline rejected it (``rejected``), or its signatures no
longer verify (``void``). ``used_at`` is set once when the call it released ran (or the call it
denied was refused): an approval authorises one call, once. At most one request per intent is
``pending`` at a time (a unique index): asking again for the same call finds the open one.

Every change goes through ``update_approval``, a compare-and-set on ``version``: two approvers
signing at once, or two workers using one approval, cannot both win.

An **approver** is ``(approver_id, role, public_key)``: the PEM of an Ed25519 public key, of one
``tenant`` (None: the approvers of runs without a tenant). Approvers are keyed by
``(tenant, approver_id)``: two tenants may each have an ``alice``, with keys of their own, and
neither registration touches the other's. A request belongs to the tenant of its run
(``RunRecord.tenant``, read where it is decided and used); only that tenant's approvers decide
it (``tether.governance.approvals_tenant``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tether.core.tenants import check_tenant_name

PENDING, APPROVED, REJECTED, VOID = "pending", "approved", "rejected", "void"
STATUSES = (PENDING, APPROVED, REJECTED, VOID)


@dataclass(slots=True)
class ApprovalRecord:
    approval_id: str
    run_id: str
    intent_hash: str
    """sha256 (hex) of the canonical intent: the unit an approval authorises."""
    intent: dict[str, Any]
    """What exactly: ``tool``, ``kind``, ``args``, ``run_id``, ``step``, ``node``, ``call_key``."""
    reason: str
    """Why the call needs approval (the policy's reason)."""
    rule: dict[str, Any]
    """Who may approve now and how many (``ApprovalRule.to_dict()``); a deadline escalation
    replaces it."""
    status: str = PENDING
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """Signed decisions in order: ``approver``, ``role``, ``decision`` (approve|reject),
    ``signature``, ``at``, ``reason``."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """What happened to the request (created, escalated, approved, rejected, used, void)."""
    deadline_at: float | None = None
    level: int = 0
    """How many times its deadline escalated it."""
    used_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 0
    """Compare-and-set counter: ``update_approval`` writes only over this version."""


@dataclass(slots=True)
class Approver:
    approver_id: str
    role: str
    public_key: str
    """PEM (SubjectPublicKeyInfo) of the approver's Ed25519 public key."""
    created_at: float = 0.0
    updated_at: float = 0.0
    tenant: str | None = None
    """Whose approver (``RunRecord.tenant``): it decides only requests of that tenant's runs
    (None: of runs without a tenant)."""


NO_TENANT = ""
"""How the SQL backends key the approvers of no tenant (a tenant name is never empty)."""


def tenant_key(tenant: str | None) -> str:
    """The key column of ``tenant``'s approvers, the name checked (``check_tenant_name``: an
    ``"acme "`` would be a tenant of its own, whose approvers decide nothing of acme's)."""
    return NO_TENANT if tenant is None else check_tenant_name(tenant)


def key_tenant(key: str) -> str | None:
    return None if key == NO_TENANT else key


@runtime_checkable
class ApprovalStore(Protocol):
    async def create_approval(self, record: ApprovalRecord) -> tuple[ApprovalRecord, bool]:
        """Insert ``record`` (``pending``) unless a pending request for its ``intent_hash``
        exists: then return that one and False. Returns the stored record and whether it was
        inserted."""
        ...

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None: ...

    async def list_approvals(
        self,
        *,
        status: str | None = None,
        run_id: str | None = None,
        intent_hash: str | None = None,
        limit: int = 100,
        tenant: str | None = None,
        before: str | None = None,
    ) -> list[ApprovalRecord]:
        """Requests matching every given filter, newest first; ``tenant``: only requests of
        that tenant's runs (``RunRecord.tenant``). ``before=<approval id>`` pages: the requests
        older than that one (the last of the previous page); ApprovalNotFoundError when it names
        no request this listing could show (none, or another tenant's)."""
        ...

    async def update_approval(self, record: ApprovalRecord) -> bool:
        """Write ``record``'s status, rule, decisions, history, deadline, level and ``used_at``
        if the stored version still equals ``record.version`` (then the stored version is one
        more). False when another writer changed it first (read it again) or it is gone. A
        request never goes back to ``pending`` once decided."""
        ...

    async def put_approver(self, approver: Approver) -> Approver:
        """Register an approver of ``approver.tenant``, or replace its role and key (key
        rotation); another tenant's approver of the same id is left alone."""
        ...

    async def get_approver(self, approver_id: str, tenant: str | None = None) -> Approver | None:
        """The approver ``approver_id`` of exactly ``tenant`` (None: of no tenant)."""
        ...

    async def list_approvers(self, tenant: str | None = None) -> list[Approver]:
        """The approvers of ``tenant`` by id; None: every approver of every tenant (by id, then
        tenant, no tenant first), as ``list_approvals(tenant=None)`` lists every request."""
        ...
