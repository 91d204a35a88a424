"""After a decision: resume the parked run, note changes on it, and audit outside a step.

A decided request (approved, or rejected by an approver or its deadline) resumes its run
when the run still waits for that request (``escalation.kind == "approval"`` with its id):
``Runtime.resume(run_id, actor="approval:...")``, the generic "approved (approval)" path. The
node re-runs its step; the tool call asks the policy again, whose ``granted`` releases the
call (approved) or refuses it with ``PolicyViolationError`` (rejected).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from tether.core.errors import RunNotFoundError, RunStateError
from tether.core.lifecycle import RunStatus
from tether.governance.scope import AuditSink, RunScope
from tether.store.approvals import ApprovalRecord
from tether.store.types import Commit, Event, RunRecord

log = logging.getLogger("tether.approvals")


def waits_for(run: RunRecord, approval_id: str) -> bool:
    esc = run.escalation or {}
    details = esc.get("details") or {}
    return (
        run.status is RunStatus.ESCALATED
        and esc.get("kind") == "approval"
        and details.get("approval_id") == approval_id
    )


def audit_sink(rt: Any, run: RunRecord) -> AuditSink | None:
    """The audit sink of ``run``'s workflow (``Governance(audit=...)``) when ``rt`` knows the
    workflow (a CLI without ``--app`` does not), else None."""
    if rt is None:
        return None
    try:
        wf = rt.workflow_for(run)
    except Exception:
        return None
    sink = getattr(getattr(wf, "governance", None), "audit", None)
    return sink if isinstance(sink, AuditSink) else None


async def audit_outside(rt: Any, run: RunRecord, kind: str, data: dict[str, Any]) -> None:
    """Record ``kind`` in the audit sink of the run's workflow, when this runtime knows the
    workflow; a decision it cannot audit is marked ``audited: False`` on the request and
    audited by the run itself when it uses the answer (``approvals_request``)."""
    sink = audit_sink(rt, run)
    if sink is not None:
        await RunScope(run, rt.store, rt.clock, None, sink).audit(kind, data)


async def note_on_run(
    rt: Any, run: RunRecord, event: str, data: dict[str, Any], details: dict[str, Any]
) -> bool:
    """Put ``event`` on the parked run's stream and merge ``details`` into its escalation,
    under a lease (False when another runtime holds the run right now)."""
    lease = await rt.store.acquire_lease(run.run_id, rt.owner, rt.lease_ttl)
    if lease is None:
        return False
    try:
        fresh = await rt.store.get_run(run.run_id)
        esc = dict(fresh.escalation or {})
        esc["details"] = {**(esc.get("details") or {}), **details}
        ev = Event(run.run_id, 0, event, rt.clock.now(), None, None, data)
        commit = Commit(events=[ev], escalation=esc, set_escalation=True, release_lease=True)
        await rt.store.commit(run.run_id, lease.token, commit)
        return True
    except BaseException:
        with contextlib.suppress(Exception):
            await rt.store.release_lease(run.run_id, lease.token)
        raise


async def resume_decided(rt: Any, rec: ApprovalRecord, actor: str, execute: bool) -> bool:
    """Resume ``rec``'s run if it still waits for ``rec``. Returns whether it was resumed."""
    try:
        run = await rt.store.get_run(rec.run_id)
    except RunNotFoundError:
        return False
    if not waits_for(run, rec.approval_id):
        return False
    try:
        await rt.resume(rec.run_id, actor=actor, wait=False, execute=execute)
    except RunStateError as exc:
        fresh = await rt.store.get_run(rec.run_id)
        if waits_for(fresh, rec.approval_id):
            raise
        log.info("approval %s: run %s was resumed meanwhile (%s)", rec.approval_id, run.run_id, exc)
        return False
    return True
