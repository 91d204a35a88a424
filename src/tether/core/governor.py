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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, runtime_checkable

from tether.core.capabilities import has_capability
from tether.core.errors import InvalidInputError

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
    """A model call's ``ModelRequest``. It is frozen: a part that changes the call (a note in
    the prompt, a setting) assigns a new one (``call.request = call.request.model_copy(...)``)
    in ``before_call``, and the live call sends that."""
    contract: Any = None
    """A tool call's ``ToolContract`` (its scope, idempotency, ...)."""
    effect_key: str | None = None
    """The key a tool call is journaled under: ``tool:{name}:{rule key}`` for a key its
    contract's rule derives (the tool itself gets the bare rule key), else ``key``; None
    when the caller did not say."""
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


RUN_BUDGET_KEY = "budget"
"""Where ``start(..., budget=...)`` keeps a run's budget overrides in its metadata."""


@runtime_checkable
class ResumeHook(Protocol):
    """Optional on a ``GovernanceConfig``: ``Runtime.resume`` of a run ESCALATED by governance
    (any kind but the engine's own: interrupt, breakpoint, step_limit, unknown_effect_outcome)
    first hands the resume value to ``on_resume``, which may act on it (raise a budget) or
    refuse it (``InvalidInputError``). It returns run metadata to merge in the resume's
    commit (or None). It must be safe to call twice with one value (a resume retried after a
    lost race calls it again)."""

    async def on_resume(
        self, store: Any, run: Any, escalation: Mapping[str, Any], value: Any
    ) -> dict[str, Any] | None: ...


@runtime_checkable
class RunBudgetCheck(Protocol):
    """Optional on a ``GovernanceConfig``: checks ``start(..., budget=...)`` before the run is
    created and returns the overrides to keep in the run's metadata (``RUN_BUDGET_KEY``)."""

    def check_run_budget(self, budget: Mapping[str, Any]) -> dict[str, Any]: ...


def run_budget_metadata(governance: Any, budget: Mapping[str, Any]) -> dict[str, Any]:
    """The checked ``start(..., budget=...)`` of a workflow governed by ``governance``; a
    workflow without a budget refuses it (``InvalidInputError``: the override would do
    nothing)."""
    if not isinstance(governance, RunBudgetCheck):
        raise InvalidInputError(
            "budget= needs a workflow compiled with governance=Governance(budget=Budget(...)); "
            "this workflow has no budget to override"
        )
    return governance.check_run_budget(budget)


@dataclass(slots=True)
class StepView:
    """A step a governed run just finished, as ``StepObserver.after_step`` sees it: its writes
    are applied to ``state`` and its commit is about to be made."""

    run: Any
    """The run's ``RunRecord`` as of its last commit (metadata included)."""
    step: int
    state: Mapping[str, Any]
    """The state after the step's writes. Read it, never change it."""
    written: tuple[str, ...]
    """The state keys the step's nodes wrote."""
    nodes: tuple[str, ...]
    """The nodes that ran in the step."""
    next_nodes: tuple[str, ...]
    """The nodes planned for the next step."""
    emit: Callable[[str, dict[str, Any]], None]
    """Put an event on the run's stream (persisted with the step's commit)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Run metadata the observer wants committed with the step (merged into the run's, key by
    key): a counter that must survive a crash lands atomically with the step it counts."""


@runtime_checkable
class StepObserver(Protocol):
    """Optional on a ``Governor``: the run loop calls ``after_step`` at each step boundary of a
    governed run that goes on (not after the last step, nor a step stopped at a breakpoint),
    before the step's commit. Raising ``EscalationSignal`` there commits the step (state and
    plan intact) with the run parked ESCALATED; a resume continues with the planned next step.
    Loop guards count steps without progress with it; a budget may count steps."""

    async def after_step(self, step: StepView) -> None: ...


@runtime_checkable
class ExecutionEnd(Protocol):
    """Optional on a ``Governor``: the run loop calls ``end_execution`` once when the run's
    execution in this process ends, for any reason (completed, failed, escalated, interrupted,
    cancelled, lease lost, drained, the runtime closing), after its last commit here. A
    governor that deferred writes (a budget settle) makes them; it must not raise."""

    async def end_execution(self) -> None: ...


async def end_execution(governor: Any) -> None:
    """``governor.end_execution()`` when it has one (``ExecutionEnd``; None: ungoverned)."""
    if governor is not None and has_capability(governor, ExecutionEnd):
        await cast("ExecutionEnd", governor).end_execution()
