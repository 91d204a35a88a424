"""What one tenant may read of the store: its own runs and approvals, nothing else.

A run or approval of another tenant reads as not found (``RunNotFoundError``,
``ApprovalNotFoundError``), exactly like one that does not exist: an API caller cannot tell
another tenant's ids from made-up ones. ``tenant=None`` is the local single tenant, who sees
everything. Lists filter in the query (``list_runs(tenant=)``, ``list_approvals(tenant=)``).
"""

from __future__ import annotations

from tether.core.errors import ApprovalNotFoundError, RunNotFoundError
from tether.store.approvals import ApprovalRecord, ApprovalStore
from tether.store.protocol import RunStore
from tether.store.types import RunRecord


def visible(run: RunRecord, tenant: str | None) -> bool:
    return tenant is None or run.tenant == tenant


async def tenant_run(store: RunStore, run_id: str, tenant: str | None) -> RunRecord:
    """The run, if ``tenant`` may see it; else RunNotFoundError."""
    run = await store.get_run(run_id)
    if not visible(run, tenant):
        raise RunNotFoundError(run_id)
    return run


async def tenant_approval(
    store: ApprovalStore, runs: RunStore, approval_id: str, tenant: str | None
) -> ApprovalRecord:
    """The approval request, if ``tenant`` may see its run; else ApprovalNotFoundError."""
    rec = await store.get_approval(approval_id)
    if rec is None:
        raise ApprovalNotFoundError(approval_id)
    if tenant is not None:
        try:
            await tenant_run(runs, rec.run_id, tenant)
        except RunNotFoundError:
            raise ApprovalNotFoundError(approval_id) from None
    return rec
