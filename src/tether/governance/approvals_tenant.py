"""Whose approvers decide a request: the tenant of its run, and nobody else.

An approval request belongs to the tenant of its run (``RunRecord.tenant``, read each time it
is decided and each time its call uses it). Approvers are registered per tenant
(``register_approver(..., tenant=...)``; none named: the approvers of runs without a tenant,
the single-tenant default), and a decision counts only when its approver is registered for
that tenant and signed with that registration's key:

- an approver of another tenant (or of no tenant, for a tenant's run, and the other way round)
  is refused with ``ApprovalTenantError``, before anything is recorded: the decision is not
  tallied and resumes nothing (the attempt is audited as ``approval.refused``,
  ``approvals_refused``);
- an approver id used by two tenants names the run's tenant's approver; a signature made with
  the other tenant's key is refused with ``ApprovalTenantError`` too;
- tenants are compared exactly: ``"ACME"`` is not ``"acme"``, and ``"acme "`` is no tenant name
  at all (``check_tenant_name``);
- at use (``approvals_tally.verified``) every approval is re-checked against the approvers of
  the run's tenant *then*: an approval given under another tenant (a request decided before
  approvers were per tenant, or a run whose tenant was changed in the database) no longer counts.

There is no cross-tenant approver: an approver key that decides for every tenant would be the
very hole this closes. Someone who decides for several tenants is registered in each (one key
may be registered in several tenants; within a tenant, a key belongs to one approver).
"""

from __future__ import annotations

from typing import Any

from tether.core.errors import ApprovalSignatureError, InvalidInputError, RunNotFoundError
from tether.governance.approvals_keys import verify
from tether.store.approvals import ApprovalRecord, ApprovalStore, Approver


class ApprovalTenantError(ApprovalSignatureError):
    """The approver is not one of the tenant whose run the request is about: registered for
    another tenant (or without one), or signing with another tenant's key. Nothing of the
    decision was recorded."""


def whose(tenant: str | None) -> str:
    """The tenant, in words."""
    return "runs without a tenant" if tenant is None else f"tenant {tenant!r}"


async def run_tenant(runs: Any, run_id: str) -> tuple[bool, str | None]:
    """Whether ``run_id`` exists, and its tenant (as it is now)."""
    try:
        run = await runs.get_run(run_id)
    except RunNotFoundError:
        return False, None
    return True, run.tenant


def scoped(bound: str | None, tenant: str | None) -> str | None:
    """The tenant a call of an ``Approvals`` view bound to ``bound`` acts for: the one it names,
    which a bound view refuses to be another."""
    if bound is None or tenant is None or tenant == bound:
        return bound if tenant is None else tenant
    raise InvalidInputError(
        f"this Approvals acts for tenant {bound!r}, not {tenant!r}: use Approvals(runtime, "
        f"tenant={tenant!r}) (or Approvals(runtime) for every tenant)"
    )


async def decider(
    store: ApprovalStore, rec: ApprovalRecord, approver_id: str, tenant: str | None
) -> Approver:
    """``approver_id`` as registered for ``tenant`` (the request's run's); refuses one that is
    not (``ApprovalTenantError`` when the run has a tenant or the id is another tenant's)."""
    approver = await store.get_approver(approver_id, tenant)
    if approver is not None:
        return approver
    elsewhere = [a for a in await store.list_approvers() if a.approver_id == approver_id]
    if tenant is None and not elsewhere:
        raise ApprovalSignatureError(
            f"approver {approver_id!r} is not registered; add them with "
            "`tether approvals approver add ID --role R --public-key FILE`"
        )
    raise ApprovalTenantError(
        f"approver {approver_id!r} may not decide on approval {rec.approval_id}: it is not "
        f"registered for {whose(tenant)}, whose run {rec.run_id} the request is about, and "
        f"only their approvers decide it; register one with `tether approvals approver add ID "
        f"--role R --public-key FILE{'' if tenant is None else ' --tenant ' + tenant}` (or "
        f"Approvals.register_approver(approver_id, role, public_key, tenant={tenant!r}))"
    )


async def refuse_foreign_signature(
    store: ApprovalStore,
    rec: ApprovalRecord,
    approver: Approver,
    decision: str,
    signature: str,
    now: float,
) -> None:
    """Called when ``signature`` does not verify under ``approver``'s key: raises
    ``ApprovalTenantError`` when it verifies under the key of another tenant's approver of
    the same id (else returns, and the caller raises its own error)."""
    for other in await store.list_approvers():
        if other.approver_id != approver.approver_id or other.tenant == approver.tenant:
            continue
        try:
            verify(other.public_key, rec.approval_id, rec.intent, decision, signature, now)
        except (ApprovalSignatureError, InvalidInputError):
            continue
        raise ApprovalTenantError(
            f"the signature is of approver {approver.approver_id!r} of another tenant, not of "
            f"the {approver.approver_id!r} of {whose(approver.tenant)}, whose run "
            f"{rec.run_id} approval {rec.approval_id} is about: only that tenant's approvers "
            "decide it, each with the key registered for that tenant"
        )


async def tenant_tally(
    store: ApprovalStore, decisions: list[dict[str, Any]], tenant: str | None
) -> list[dict[str, Any]]:
    """The approvals among ``decisions`` whose approver is registered for ``tenant``, with
    that registration's key (what ``approvals_tally.complete`` counts)."""
    out = []
    for d in decisions:
        if d.get("decision") != "approve":
            continue
        a = await store.get_approver(d["approver"], tenant)
        if a is not None:
            out.append({**d, "key": a.public_key})
    return out
