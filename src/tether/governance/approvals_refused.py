"""Refused decisions, audited: ``approval.refused``.

A decision refused before it is recorded (an approver of another tenant, or none registered;
a role the request's rule does not name; a forged, malformed or expired signature; an approver
deciding twice; a request already decided, past its deadline or void) counts for nothing: it is
not tallied and resumes nothing. Where the run's audit sink is known (an ``Approvals`` over a
runtime that knows the run's workflow), the attempt is audited in the run's tenant's chain as
``approval.refused`` with the request, the approver id as given, the decision asked for, the
error's type and its message (``reason``), so a security team sees who tried what. The signature
is never recorded, not even inside a message that quoted a piece of it.
"""

from __future__ import annotations

import logging
from typing import Any

from tether.core.errors import RunNotFoundError
from tether.governance.approvals_keys import SCHEME
from tether.governance.approvals_resume import audit_outside
from tether.store.approvals import ApprovalRecord

log = logging.getLogger("tether.approvals")

REFUSED = "approval.refused"
MAX_REASON = 1000
"""Characters of the refusal's message kept in the audit record."""


def without_signature(message: str, signature: object) -> str:
    """``message`` with the signature and each of its parts (but the scheme) taken out."""
    if isinstance(signature, bytes):
        signature = signature.decode("ascii", "replace")
    if isinstance(signature, str) and signature:
        pieces = {signature, signature.strip(), *signature.strip().split(":")} - {SCHEME}
        for piece in sorted(pieces, key=len, reverse=True):
            if len(piece) >= 4:
                message = message.replace(piece, "<signature>")
    return message[:MAX_REASON]


async def audit_refused(
    runtime: Any,
    rec: ApprovalRecord,
    approver_id: str,
    decision: str,
    signature: object,
    error: BaseException,
) -> None:
    """Audit the refused decision ``error`` of ``approver_id`` on ``rec`` in the audit sink of
    its run's workflow, when ``runtime`` knows it (else nothing: a store-only ``Approvals`` or
    a CLI without ``--app`` has no sink). A failure to audit is logged; the refusal stands."""
    if runtime is None:
        return
    try:
        run = await runtime.store.get_run(rec.run_id)
    except RunNotFoundError:
        return
    data = {
        "approval_id": rec.approval_id,
        "approver": approver_id,
        "decision": decision,
        "status": rec.status,
        "error": type(error).__name__,
        "reason": without_signature(str(error), signature),
    }
    try:
        await audit_outside(runtime, run, REFUSED, data)
    except Exception:
        log.exception("could not audit the refused decision on approval %s", rec.approval_id)
