"""Requests nothing waits for any more: a pending approval whose run has ended (cancelled,
completed, failed) or is gone is void, and leaves the pending list when it is next listed.

A run cancelled by a runtime that imported ``tether.governance`` voids its requests at once
(the cancel hook of ``approvals_api``); one cancelled by a process that never imported it (the
``tether runs cancel`` command, a script), or a run that ended some other way, left its
requests pending: listed, shown in the dashboard, until a decision came and was refused.
``void_ended`` marks them void where they are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.core.errors import RunNotFoundError
from tether.core.lifecycle import FINISHED
from tether.store.approvals import PENDING, VOID, ApprovalRecord, ApprovalStore


async def _ended(runs: Any, run_id: str) -> str | None:
    """Why nothing waits on ``run_id`` any more ('is CANCELLED', 'is gone'); None: it waits."""
    get_run = getattr(runs, "get_run", None)
    if get_run is None:
        return None
    try:
        status = (await get_run(run_id)).status
    except RunNotFoundError:
        return "is gone"
    return f"is {status.value}" if status in FINISHED else None


async def void_ended(
    approvals: ApprovalStore, runs: Any, recs: Sequence[ApprovalRecord], now: float
) -> list[ApprovalRecord]:
    """``recs`` with each pending request whose run ended marked void (in the store too);
    each run is read once."""
    why: dict[str, str | None] = {}
    out = []
    for rec in recs:
        if rec.status == PENDING:
            if rec.run_id not in why:
                why[rec.run_id] = await _ended(runs, rec.run_id)
            ended = why[rec.run_id]
            if ended is not None:
                rec.status = VOID
                rec.history.append({"what": "void", "at": now, "why": f"the run {ended}"})
                if await approvals.update_approval(rec):
                    rec.version += 1
                else:  # decided or voided meanwhile: as it is now
                    fresh = await approvals.get_approval(rec.approval_id)
                    rec = fresh if fresh is not None else rec
        out.append(rec)
    return out


def still_listed(recs: Sequence[ApprovalRecord], status: str | None) -> list[ApprovalRecord]:
    """The records a list filtered by ``status`` still shows once some were voided."""
    return [r for r in recs if status is None or r.status == status]
