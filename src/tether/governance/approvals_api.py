"""``Approvals``: list, inspect and decide on approval requests; register approvers.

``Approvals(runtime)`` resumes a run as soon as its request is decided (approved by enough
approvers, or rejected): ``Runtime.resume`` with ``execute=True`` (default; the run continues
in this runtime, which must know its workflow) or ``execute=False`` (the run goes back to the
queue for any worker). ``Approvals(store)`` only records decisions: the caller resumes the run
(``Runtime.resume(run_id)`` or ``tether runs resume RUN_ID``).

A rejection by any one eligible approver rejects the request (a veto); the resumed call is then
refused with ``PolicyViolationError``, which the planner sees as the tool's error.

Tenants (``approvals_tenant``): a request is decided only by approvers registered for the tenant
of its run (``register_approver(..., tenant=...)``); ``Approvals(rt, tenant="acme")`` acts for
acme alone (its requests, its approvers: another tenant's request reads as not found), and
``Approvals(rt)`` for every tenant (``list(tenant=...)`` filters).
"""

from __future__ import annotations

import builtins
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.core.errors import (
    ApprovalSignatureError,
    ApprovalStateError,
    InvalidInputError,
)
from tether.core.tenants import check_tenant_name
from tether.governance.approvals_keys import generate_key, public_pem, sign, verify
from tether.governance.approvals_refused import audit_refused
from tether.governance.approvals_request import approval_store
from tether.governance.approvals_resume import audit_outside, audit_sink, resume_decided
from tether.governance.approvals_tally import complete, may_decide, who
from tether.governance.approvals_tenant import (
    decider,
    refuse_foreign_signature,
    run_tenant,
    scoped,
    tenant_tally,
)
from tether.governance.approvals_void import listed, mark_void, run_ended
from tether.graph.extensions import on_run_cancelled, register_runtime_extension
from tether.graph.state import check_text
from tether.store.approvals import (
    APPROVED,
    PENDING,
    REJECTED,
    STATUSES,
    ApprovalRecord,
    ApprovalStore,
    Approver,
)
from tether.store.tenancy import tenant_approval

_TRIES = 8


class Approvals:
    """The approvals of one store: ``rt.approvals`` (a runtime's), or ``Approvals(rt_or_store)``."""

    generate_key = staticmethod(generate_key)
    sign = staticmethod(sign)

    def __init__(self, target: Any, *, execute: bool = True, tenant: str | None = None) -> None:
        self.runtime = target if hasattr(target, "resume") and hasattr(target, "store") else None
        self.store = approval_store(target.store if self.runtime is not None else target)
        self.execute = execute
        self.tenant = None if tenant is None else check_tenant_name(tenant)
        """The tenant this view acts for (None: every tenant)."""

    @property
    def _runs(self) -> Any:
        return self.runtime.store if self.runtime is not None else self.store

    def _now(self) -> float:
        clock = getattr(self.runtime or self.store, "clock", None)
        if clock is None:
            raise InvalidInputError("the store has no clock")
        return float(clock.now())

    # -- reading ---------------------------------------------------------------------------
    async def list(
        self,
        status: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
        *,
        tenant: str | None = None,
    ) -> list[ApprovalRecord]:
        """Requests, newest first (``tenant``: only that tenant's; a view bound to a tenant
        lists only its own); a pending one whose run has ended is marked void on the way
        (``approvals_void``) and leaves a pending list."""
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"unknown approval status {status!r}; use one of {STATUSES}")
        t = scoped(self.tenant, None if tenant is None else check_tenant_name(tenant))
        recs = await self.store.list_approvals(status=status, run_id=run_id, limit=limit, tenant=t)
        return await listed(self.store, self._runs, recs, status, self._now())

    async def get(self, approval_id: str) -> ApprovalRecord:
        """The request (of this view's tenant, when it is bound to one: another tenant's reads
        as not found)."""
        return await tenant_approval(self.store, self._runs, approval_id, self.tenant)

    # -- approvers -------------------------------------------------------------------------
    async def register_approver(
        self,
        approver_id: str,
        role: str,
        public_key: str | bytes | Ed25519PublicKey | Ed25519PrivateKey,
        *,
        tenant: str | None = None,
    ) -> Approver:
        """Register (or re-key) an approver of ``tenant`` (None: of runs without a tenant; a
        view bound to a tenant registers its own): it decides only that tenant's requests.
        A key registered to another approver of the tenant is refused: one key must never
        count as two approvers."""
        for name, value in (("approver id", approver_id), ("role", role)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(f"the {name} must be a non-empty string, got {value!r}")
        check_text(approver_id=approver_id, role=role)
        t = scoped(self.tenant, None if tenant is None else check_tenant_name(tenant))
        pem = public_pem(public_key)
        for other in await self.store.list_approvers(t):
            if other.tenant == t and other.public_key == pem and other.approver_id != approver_id:
                raise InvalidInputError(
                    f"that public key is registered to approver {other.approver_id!r} already; "
                    "every approver needs a key of their own (tether approvals keygen)"
                )
        return await self.store.put_approver(Approver(approver_id, role, pem, tenant=t))

    async def approvers(self, tenant: str | None = None) -> builtins.list[Approver]:
        """The approvers of ``tenant`` (every tenant's, unless named or this view is bound)."""
        t = scoped(self.tenant, None if tenant is None else check_tenant_name(tenant))
        return await self.store.list_approvers(t)

    # -- deciding --------------------------------------------------------------------------
    async def approve(self, approval_id: str, approver: str, signature: str) -> ApprovalRecord:
        """Add ``approver``'s signed approval; once enough distinct approvers approved, the
        request is approved (and, with a runtime, its run resumed)."""
        return await self._decide(approval_id, approver, signature, "approve", "")

    async def reject(
        self, approval_id: str, approver: str, signature: str, reason: str = ""
    ) -> ApprovalRecord:
        """Reject the request (one eligible approver suffices); with a runtime, its run
        resumes and the call is refused with ``PolicyViolationError``."""
        return await self._decide(approval_id, approver, signature, "reject", reason)

    async def resume(self, approval_id: str, actor: str = "approvals") -> bool:
        """Resume the run of a decided request if it still waits for it (needs a runtime)."""
        if self.runtime is None:
            raise InvalidInputError("Approvals(store) cannot resume runs: use Approvals(runtime)")
        rec = await self.get(approval_id)
        if rec.status not in (APPROVED, REJECTED):
            raise ApprovalStateError(f"approval {approval_id} is {rec.status}, not decided")
        return await resume_decided(self.runtime, rec, actor, self.execute)

    async def _decide(
        self, approval_id: str, approver_id: str, signature: str, decision: str, reason: str
    ) -> ApprovalRecord:
        check_text(approver=approver_id, reason=reason)
        for _ in range(_TRIES):
            rec = await self.get(approval_id)
            now = self._now()
            found = await run_tenant(self._runs, rec.run_id)
            tenant = found[1]
            try:
                approver = await self._checked(rec, approver_id, decision, signature, now, found)
            except (ApprovalSignatureError, ApprovalStateError) as exc:  # audited, not counted
                await audit_refused(self.runtime, rec, approver_id, decision, signature, exc)
                raise
            rec.decisions.append(
                {
                    "approver": approver.approver_id,
                    "role": approver.role,
                    "decision": decision,
                    "signature": signature,
                    "at": now,
                    "reason": reason,
                    # whether the run's audit sink gets it now (else the run audits it later)
                    "audited": await self._can_audit(rec.run_id),
                }
            )
            if decision == "reject":
                rec.status = REJECTED
            elif complete(rec.rule, await tenant_tally(self.store, rec.decisions, tenant)):
                rec.status = APPROVED
            what = {"approve": "approved", "reject": "rejected"}[decision]
            rec.history.append({"what": what, "at": now, "by": approver_id, "reason": reason})
            if await self.store.update_approval(rec):
                rec.version += 1
                await self._after(rec, approver_id, decision)
                return rec
        raise ApprovalStateError(
            f"approval {approval_id} keeps changing under concurrent decisions; try again"
        )

    async def _checked(
        self,
        rec: ApprovalRecord,
        approver_id: str,
        decision: str,
        signature: str,
        now: float,
        found: tuple[bool, str | None],
    ) -> Approver:
        """The approver whose signed ``decision`` on ``rec`` may be recorded now; else the
        refusal (ApprovalSignatureError, ApprovalTenantError, ApprovalStateError)."""
        exists, tenant = found
        if not exists:  # whose approvers could decide it is unknowable: void
            await self._check_run_waits(rec, now)
        approver = await decider(self.store, rec, approver_id, tenant)
        _check_open(rec, approver, now)
        try:
            verify(approver.public_key, rec.approval_id, rec.intent, decision, signature, now)
        except ApprovalSignatureError:
            await refuse_foreign_signature(self.store, rec, approver, decision, signature, now)
            raise
        await self._check_run_waits(rec, now)  # only a signed decision may void a request
        return approver

    async def _check_run_waits(self, rec: ApprovalRecord, now: float) -> None:
        """A request whose run has ended (cancelled, completed, failed) is void: a late
        decision on it is refused, and the request is marked void."""
        ended = await run_ended(self._runs, rec.run_id)
        if ended is None:
            return
        mark_void(rec, now, f"the run {ended}")
        await self.store.update_approval(rec)
        raise ApprovalStateError(
            f"approval {rec.approval_id} is void: its run {rec.run_id} {ended}, so nothing "
            "waits for this decision"
        )

    async def _can_audit(self, run_id: str) -> bool:
        if self.runtime is None:
            return False
        return audit_sink(self.runtime, await self.runtime.store.get_run(run_id)) is not None

    async def _after(self, rec: ApprovalRecord, approver_id: str, decision: str) -> None:
        if self.runtime is None:
            return
        run = await self.runtime.store.get_run(rec.run_id)
        data = {"approval_id": rec.approval_id, "approver": approver_id, "status": rec.status}
        await audit_outside(self.runtime, run, f"approval.{decision}", data)
        if rec.status in (APPROVED, REJECTED):
            await resume_decided(self.runtime, rec, f"approval:{approver_id}", self.execute)


def _check_open(rec: ApprovalRecord, approver: Approver, now: float) -> None:
    aid = rec.approval_id
    if rec.status != PENDING:
        raise ApprovalStateError(f"approval {aid} is {rec.status} already; nothing to decide")
    if rec.deadline_at is not None and rec.deadline_at <= now:
        raise ApprovalStateError(
            f"approval {aid} passed its deadline; its deadline action is being applied"
        )
    if not may_decide(rec.rule, approver.approver_id, approver.role):
        raise ApprovalSignatureError(
            f"approver {approver.approver_id!r} (role {approver.role!r}) may not decide on "
            f"approval {aid}: it needs {who(rec.rule)}"
        )
    if any(d["approver"] == approver.approver_id for d in rec.decisions):
        raise ApprovalStateError(
            f"approver {approver.approver_id!r} decided on approval {aid} already; the next "
            "approval must come from a different approver"
        )


register_runtime_extension("approvals", Approvals)  # rt.approvals (tether.graph.extensions)


async def _void_for_cancelled_run(runtime: Any, run: Any) -> None:
    """A cancelled run's pending requests are void at once: they leave the pending list (and
    the dashboard) instead of waiting for a decision that would be refused."""
    store = runtime.store
    if not isinstance(store, ApprovalStore):
        return
    now = float(runtime.clock.now())
    for rec in await store.list_approvals(status=PENDING, run_id=run.run_id, limit=1000):
        mark_void(rec, now, "the run is CANCELLED")
        await store.update_approval(rec)


on_run_cancelled("approvals", _void_for_cancelled_run)
