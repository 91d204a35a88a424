"""Resuming a parent whose child run parked at a breakpoint or at its step limit.

A child that parks parks its parent (``escalation["details"]["child"]`` names it). Interrupts
are relayed (``graph.relay``): the parent's answer goes down to the child's question. A child's
breakpoint (``compile(interrupt_before=...)`` on the child's workflow) or step limit takes no
answer, and the parent's escalation says "resume the run to go on", so resuming the parent
resumes the child the same way (``max_steps`` granting the child more steps); before, the
parent's node found the child still parked and parked again, and no resume of the parent got
past it. The child is resumed without being executed here: the parent's node, re-run, takes it
over and follows it. A child resumed directly meanwhile (it no longer waits) is left as it is.

Governance trips (a budget, a loop guard) are not passed down: their resume takes a value
meant for the child (``{"raise_budget": ...}``); resume the child, then the parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.core.errors import RunStateError, WorkflowVersionError
from tether.core.lifecycle import RunStatus

if TYPE_CHECKING:
    from tether.graph.host import RunHost
    from tether.store.types import RunRecord

PASSED_DOWN = frozenset({"breakpoint", "step_limit"})
"""The kinds of a child's escalation that resuming its parent resumes."""


def parked_child(run: RunRecord) -> str | None:
    """The child run ``run`` waits for at its breakpoint or step limit (None: none)."""
    esc = run.escalation or {}
    if run.status is not RunStatus.ESCALATED or esc.get("kind") not in PASSED_DOWN:
        return None
    details = esc.get("details")
    child = details.get("child") if isinstance(details, dict) else None
    return child if isinstance(child, str) else None


async def resume_child(
    rt: RunHost,
    run: RunRecord,
    child_id: str,
    value: Any,
    max_steps: int | None,
    actor: str,
    missing: Any,
) -> str:
    """Resume ``run``'s parked child ``child_id`` (left for ``run``'s node to take over);
    returns the reason the parent's resume records."""
    kind = (run.escalation or {}).get("kind")
    args = () if value is missing else (value,)
    try:
        await rt.resume(
            child_id, *args, max_steps=max_steps, actor=actor, wait=False, execute=False
        )
    except WorkflowVersionError:
        raise
    except RunStateError:  # resumed directly meanwhile: the node follows it as it is now
        return f"its child run {child_id} no longer waits ({kind})"
    return f"resumed its child run {child_id} ({kind})"
