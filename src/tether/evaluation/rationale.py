"""What a node says about its actions: ``explain`` (a rationale for the actions that follow)
and ``record_plan`` (the steps it intends to take), as events on the run's stream.

Both are stored with the run (persisted with the step, like every event a node emits) and
read back by the mind log (``tether.evaluation.mind_log``), the KPIs (plan fidelity) and the
drift monitor (consecutive plans). Each event carries the node's task id and how many
journaled calls of each kind the task had made when it was emitted, so the mind log can tell
which tool calls came after it without relying on clocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tether.core.errors import InvalidInputError
from tether.graph.context import RunContext, current_context

RATIONALE_EVENT = "rationale"
PLAN_EVENT = "plan"
MAX_TEXT = 8000
"""Characters of a rationale or plan text kept in the event."""


def _ctx(ctx: RunContext | None) -> RunContext:
    return ctx if ctx is not None else current_context()


def explain(text: str, *, ctx: RunContext | None = None, **data: Any) -> None:
    """Record why the node is about to act: the rationale stands for the tool calls and effects
    the node makes after it, until its next ``explain``. Call it inside a node (``ctx``
    defaults to the running node's context)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("explain(text) needs a non-empty rationale string")
    _ctx(ctx).explain(text, **data)


def plan_step_name(step: Any) -> str:
    """A plan step as the name of the tool or node it calls for: a string, or a mapping with
    ``tool`` (or ``node``, ``name``)."""
    if isinstance(step, str) and step.strip():
        return step.strip()
    if isinstance(step, Mapping):
        for field in ("tool", "node", "name"):
            value = step.get(field)
            if isinstance(value, str) and value.strip():
                return value.strip()
    raise InvalidInputError(
        f"a plan step must be a tool or node name, or a mapping with 'tool' (or 'node', "
        f"'name'); got {step!r}"
    )


def record_plan(
    steps: Sequence[Any], *, text: str | None = None, ctx: RunContext | None = None
) -> list[str]:
    """Record the plan the node made: the tools (or nodes) it intends to run, in order, and
    optionally its text (the drift monitor compares consecutive plans by it; by default the
    steps joined). A later ``record_plan`` in the run is a re-plan. Returns the step names."""
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence):
        raise InvalidInputError("record_plan(steps) takes a list of tool or node names")
    names = [plan_step_name(s) for s in steps]
    c = _ctx(ctx)
    shown = text if text is not None else " -> ".join(names)
    c.emit(
        PLAN_EVENT,
        {
            "steps": names,
            "raw": [s if isinstance(s, str) else dict(s) for s in steps],
            "text": shown[:MAX_TEXT],
            "task_id": c.task_id,
            "calls": c.calls_made(),
        },
    )
    return names
