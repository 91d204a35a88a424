"""People in the loop: the runs waiting for an answer (interrupts) and approval requests."""

import base64
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from tether.core.errors import ApprovalNotFoundError, ConfigurationError, RunNotFoundError
from tether.core.lifecycle import RunStatus
from tether.governance.approvals import Approvals
from tether.governance.approvals_keys import payload
from tether.governance.approvals_void import listed
from tether.server import paging, views
from tether.server.keys import Principal
from tether.server.problems import API_PROBLEMS
from tether.server.schemas import (
    Approval,
    ApprovalId,
    ApprovalList,
    ApproveBody,
    InterruptList,
    RejectBody,
    SigningPayload,
)
from tether.server.services import Services
from tether.server.strict_query import known_query
from tether.store.approvals import ApprovalStore
from tether.store.tenancy import tenant_approval

ApprovalStatus = Literal["pending", "approved", "rejected", "void"]


_SCAN_PAGES = 10
"""Pages of waiting runs one ``/v1/interrupts`` request reads at most (most may be parked on
approvals or budgets, which list no interrupt)."""


def router(services: Services) -> APIRouter:
    r = APIRouter(tags=["human input"], responses=API_PROBLEMS, dependencies=[Depends(known_query)])
    read, approve = services.require("read"), services.require("approve")
    rt = services.runtime

    def approvals_store() -> ApprovalStore:
        store = rt.store
        if not isinstance(store, ApprovalStore):
            raise ConfigurationError(f"{type(store).__name__} keeps no approvals")
        return store

    async def visible(approval_id: ApprovalId, who: Principal) -> Any:
        return await tenant_approval(approvals_store(), rt.store, approval_id, who.tenant)

    @r.get("/v1/interrupts", response_model=InterruptList, summary="Runs waiting for an answer")
    async def interrupts(
        who: Annotated[Principal, Depends(read)],
        limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.MAX_LIMIT,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any]:
        """The interrupts of the waiting runs, newest run first: the runs parked on one (not
        on an approval or a budget) until ``limit`` interrupts are listed (a run's are listed
        together), the next page at ``next_cursor``."""
        before = paging.decode_str("interrupts", cursor) if cursor else None
        items: list[dict[str, Any]] = []
        for _ in range(_SCAN_PAGES):  # bounded: a page may end short, with a cursor
            try:
                runs = await rt.store.list_runs(
                    status=[RunStatus.ESCALATED], tenant=who.tenant, limit=limit, before=before
                )
            except RunNotFoundError:
                raise paging.gone("run") from None
            for i, run in enumerate(runs):
                items += views.interrupts(run)
                if len(items) >= limit:
                    last = i == len(runs) - 1 and len(runs) < limit
                    nxt = None if last else paging.encode("interrupts", run.run_id)
                    return {"items": items, "next_cursor": nxt}
            if len(runs) < limit:
                return {"items": items, "next_cursor": None}
            before = runs[-1].run_id
        return {"items": items, "next_cursor": paging.encode("interrupts", before)}

    @r.get("/v1/approvals", response_model=ApprovalList, summary="Approval requests")
    async def list_approvals(
        who: Annotated[Principal, Depends(read)],
        status: ApprovalStatus | None = None,
        run_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = 100,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any]:
        store = approvals_store()
        before = paging.decode_str("approvals", cursor) if cursor else None
        try:
            recs = await store.list_approvals(
                status=status, run_id=run_id, limit=limit + 1, tenant=who.tenant, before=before
            )
        except ApprovalNotFoundError:
            raise paging.gone("approval request") from None
        more = len(recs) > limit
        recs = recs[:limit]
        nxt = paging.encode("approvals", recs[-1].approval_id) if more and recs else None
        recs = await listed(store, rt.store, recs, status, rt.clock.now())  # ended: void
        return {"items": [views.approval(rec) for rec in recs], "next_cursor": nxt}

    @r.get("/v1/approvals/{approval_id}", response_model=Approval, summary="One request")
    async def get_approval(
        approval_id: ApprovalId, who: Annotated[Principal, Depends(read)]
    ) -> dict[str, Any]:
        return views.approval(await visible(approval_id, who))

    @r.get(
        "/v1/approvals/{approval_id}/signing-payload",
        response_model=SigningPayload,
        summary="The exact bytes an approver signs (Ed25519) to decide on a request",
    )
    async def signing_payload(
        approval_id: ApprovalId,
        who: Annotated[Principal, Depends(read)],
        decision: Literal["approve", "reject"] = "approve",
        expires_at: Annotated[float | None, Query(gt=0, lt=1e11)] = None,
    ) -> dict[str, Any]:
        rec = await visible(approval_id, who)
        until = expires_at if expires_at is not None else time.time() + 3600.0
        raw = payload(rec.approval_id, rec.intent, decision, until)
        return {
            "approval_id": rec.approval_id,
            "decision": decision,
            "expires_at": float(until),
            "payload": base64.b64encode(raw).decode("ascii"),
        }

    @r.post(
        "/v1/approvals/{approval_id}/approve",
        response_model=Approval,
        summary="Approve a request (signed); enough approvals resume its run",
    )
    async def approve_request(
        approval_id: ApprovalId, body: ApproveBody, who: Annotated[Principal, Depends(approve)]
    ) -> dict[str, Any]:
        await visible(approval_id, who)
        api = Approvals(rt, execute=False)
        return views.approval(await api.approve(approval_id, body.approver, body.signature))

    @r.post(
        "/v1/approvals/{approval_id}/reject",
        response_model=Approval,
        summary="Reject a request (signed); its run resumes and the call is refused",
    )
    async def reject_request(
        approval_id: ApprovalId, body: RejectBody, who: Annotated[Principal, Depends(approve)]
    ) -> dict[str, Any]:
        await visible(approval_id, who)
        api = Approvals(rt, execute=False)
        rec = await api.reject(approval_id, body.approver, body.signature, body.reason)
        return views.approval(rec)

    return r
