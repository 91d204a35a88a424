"""Run governance, seen from the planes that make calls (``tether.llm``, ``tether.tools``).

A workflow compiled with ``governance=`` (``tether.governance.Governance``) gives each of its
runs a :class:`Governor`. The run's context (``RunContext.governor``, read through
:func:`governor_of`) carries it to every model call (``Model.send``) and tool call
(``ToolExecutor.call``) a node makes, and those planes ask it, around each *live* call:

- ``before_call`` once the call is known and before anything is journaled: it may raise
  ``EscalationSignal`` (a trip: the run parks ESCALATED with its state intact, e.g. a budget
  or a loop guard), ``PolicyViolationError`` (denied: the planner gets the typed error, never
  retried), or return (allowed; it may note a reservation in ``call.scratch``);
- ``after_call`` once the call returned or failed, with what it cost (settle a reservation,
  count, audit).

A journaled replay (a resumed or recovered run getting a recorded result back) is not a live
call: neither hook runs, so a replay is charged and counted nothing. The planes depend on this
protocol only; the engine never knows what a governor does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

CallKind = Literal["model", "tool"]


@dataclass(slots=True)
class GovernedCall:
    """One live model or tool call, as a governor sees it before it runs."""

    kind: CallKind
    name: str
    """The tool's name, or the model's ``provider:model``."""
    args: Mapping[str, Any] = field(default_factory=dict)
    """A tool call's validated arguments; empty for a model call."""
    key: str | None = None
    """The call's journal key in its run (unique per run and call, stable across replays)."""
    request: Any = None
    """A model call's ``ModelRequest``."""
    contract: Any = None
    """A tool call's ``ToolContract`` (its scope, idempotency, ...)."""
    projected: dict[str, float] = field(default_factory=dict)
    """What the call may cost at most, per budget dimension the plane can tell: a model call
    ``input_tokens`` (estimated from the prompt), ``output_tokens`` (its ``max_tokens``) and
    ``cost`` (those priced); a tool call ``cost`` when its contract declares one."""
    scratch: dict[str, Any] = field(default_factory=dict)
    """The governor's own notes between ``before_call`` and ``after_call`` (a reservation)."""


@dataclass(slots=True)
class CallOutcome:
    """How a live call ended."""

    ok: bool
    usage: dict[str, float] = field(default_factory=dict)
    """What it cost: a model call ``input_tokens``, ``output_tokens``, ``cost``; a tool call
    what its contract reports (may be empty)."""
    result: Any = None
    error: BaseException | None = None


@runtime_checkable
class Governor(Protocol):
    """What ``Governance`` is to the planes (see the module docstring)."""

    async def before_call(self, run: Any, call: GovernedCall) -> None: ...

    async def after_call(self, run: Any, call: GovernedCall, outcome: CallOutcome) -> None: ...


def governor_of(run: Any) -> Governor | None:
    """The governor of the run whose context (a ``CallJournal``) is ``run``; None when the run
    is not governed or there is no run."""
    return getattr(run, "governor", None) if run is not None else None


@runtime_checkable
class GovernanceConfig(Protocol):
    """What ``compile(governance=...)`` takes (``tether.governance.Governance``): it makes the
    governor of each run the workflow executes, once per execution of the run in a process."""

    def governor(self, store: Any, run: Any, clock: Any) -> Governor:
        """``store``: the runtime's RunStore; ``run``: the run's ``RunRecord`` as its execution
        here begins (ids, parent, tenant, metadata with any per-run overrides)."""
        ...
