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


def mark_void(rec: ApprovalRecord, now: float, why: str) -> None:
    """Mark ``rec`` void, saying why in its history (the caller writes it)."""
    rec.status = VOID
    rec.history.append({"what": "void", "at": now, "why": why})


async def run_ended(runs: Any, run_id: str) -> str | None:
    """Why nothing waits on ``run_id`` any more ('is CANCELLED', 'is gone'); None: it waits
    (or ``runs`` cannot tell: it keeps no runs)."""
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
                why[rec.run_id] = await run_ended(runs, rec.run_id)
            ended = why[rec.run_id]
            if ended is not None:
                mark_void(rec, now, f"the run {ended}")
                if await approvals.update_approval(rec):
                    rec.version += 1
                else:  # decided or voided meanwhile: as it is now
                    fresh = await approvals.get_approval(rec.approval_id)
                    rec = fresh if fresh is not None else rec
        out.append(rec)
    return out


async def listed(
    approvals: ApprovalStore,
    runs: Any,
    recs: Sequence[ApprovalRecord],
    status: str | None,
    now: float,
) -> list[ApprovalRecord]:
    """What a list of requests filtered by ``status`` shows: with every (``None``) or only
    pending requests, those whose run ended are voided on the way (and leave a pending list)."""
    if status not in (None, PENDING):
        return list(recs)
    out = await void_ended(approvals, runs, recs, now)
    return [r for r in out if status is None or r.status == status]
