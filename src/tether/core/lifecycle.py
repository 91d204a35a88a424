"""The run lifecycle state machine (DESIGN §2). Pure: no I/O.

::

    RECEIVED → PLANNED → EXECUTING ⇄ WAITING_FOR_TOOL → VALIDATING → COMPLETED
    EXECUTING | VALIDATING → ESCALATED   (human needed: approval, input, tripped guard or budget)
    ESCALATED → EXECUTING (approved / answered) | FAILED | CANCELLED
    EXECUTING → FAILED → PLANNED (bounded re-plan)          any non-terminal → CANCELLED

Three edges beyond the diagram, each because the graph can drive there in one step:
``VALIDATING → EXECUTING`` (a validator sends work back: self-correction loops),
``WAITING_FOR_TOOL → ESCALATED | FAILED`` (a tool-phase node interrupts or fails) and
``VALIDATING → FAILED`` (a validator node fails).
"""

from __future__ import annotations

from enum import StrEnum

from tether.core.errors import IllegalTransitionError


class RunStatus(StrEnum):
    RECEIVED = "RECEIVED"
    PLANNED = "PLANNED"
    EXECUTING = "EXECUTING"
    WAITING_FOR_TOOL = "WAITING_FOR_TOOL"
    VALIDATING = "VALIDATING"
    COMPLETED = "COMPLETED"
    ESCALATED = "ESCALATED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    def __str__(self) -> str:
        return self.value


S = RunStatus

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    S.RECEIVED: frozenset({S.PLANNED, S.CANCELLED}),
    S.PLANNED: frozenset({S.EXECUTING, S.CANCELLED}),
    S.EXECUTING: frozenset({S.WAITING_FOR_TOOL, S.VALIDATING, S.ESCALATED, S.FAILED, S.CANCELLED}),
    S.WAITING_FOR_TOOL: frozenset({S.EXECUTING, S.VALIDATING, S.ESCALATED, S.FAILED, S.CANCELLED}),
    S.VALIDATING: frozenset({S.COMPLETED, S.EXECUTING, S.ESCALATED, S.FAILED, S.CANCELLED}),
    S.ESCALATED: frozenset({S.EXECUTING, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.PLANNED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL: frozenset[RunStatus] = frozenset({S.COMPLETED, S.CANCELLED})
"""States nothing leaves. FAILED is final too unless a bounded re-plan takes it back to PLANNED."""

FINISHED: frozenset[RunStatus] = frozenset({S.COMPLETED, S.CANCELLED, S.FAILED})
"""States in which a run no longer executes on its own."""

ACTIVE: frozenset[RunStatus] = frozenset(
    {S.RECEIVED, S.PLANNED, S.EXECUTING, S.WAITING_FOR_TOOL, S.VALIDATING}
)
"""States in which a run should be executing: a worker must own it (or pick it up)."""

PARKED: frozenset[RunStatus] = frozenset({S.ESCALATED})
"""Waiting for a human or a signal: no worker holds it."""


def can_transition(src: RunStatus, dst: RunStatus) -> bool:
    return dst in TRANSITIONS[src]


def check_transition(src: RunStatus | str, dst: RunStatus | str) -> None:
    s, d = RunStatus(src), RunStatus(dst)
    if d not in TRANSITIONS[s]:
        raise IllegalTransitionError(s.value, d.value)


def path_to(src: RunStatus, dst: RunStatus) -> list[RunStatus]:
    """Shortest legal path of transitions from ``src`` to ``dst`` (excluding ``src``).

    Used by the run loop to move through intermediate phases (e.g. WAITING_FOR_TOOL →
    VALIDATING → COMPLETED) so every hop is recorded. Raises if no path exists.
    """
    if src == dst:
        return []
    frontier: list[list[RunStatus]] = [[src]]
    seen = {src}
    while frontier:
        nxt: list[list[RunStatus]] = []
        for path in frontier:
            for cand in sorted(TRANSITIONS[path[-1]], key=lambda s: s.value):
                if cand in seen:
                    continue
                if cand == dst:
                    return [*path[1:], cand]
                seen.add(cand)
                nxt.append([*path, cand])
        frontier = nxt
    raise IllegalTransitionError(src.value, dst.value)
