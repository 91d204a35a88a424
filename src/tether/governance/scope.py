"""The per-run side of governance: the governor a run's calls ask, and the parts it asks.

``Governance`` (``config``) is configured once per workflow; each execution of a run gets a
:class:`RunGovernor` (``Governance.governor``), which asks every configured part, in a fixed
order, around each live model and tool call (see ``tether.core.governor``). A part is one
concern (a budget, a loop guard, a policy set...) implementing :class:`GovernancePart`; it sees
the call and a :class:`RunScope`: the run, the store, the clock, the calling node's context,
and the audit trail every decision goes to.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.core.clock import Clock
from tether.core.governor import CallOutcome, GovernedCall, StepView
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

log = logging.getLogger(__name__)


REFUSED_UNDO = "_on_refused"
"""Where ``on_refused`` keeps its undos in ``call.scratch``."""


def on_refused(call: GovernedCall, undo: Callable[[], Awaitable[None]]) -> None:
    """Have ``undo`` awaited if ``call`` is stopped before it runs after all (a later part
    refuses it): what a part took for the call in ``before_call`` that is not a reservation
    its own ``after_call`` settles (an approval the call used is given back)."""
    call.scratch.setdefault(REFUSED_UNDO, []).append(undo)


class GovernancePart:
    """One concern of governance. Both hooks default to doing nothing.

    ``before_call`` may raise ``EscalationSignal`` (trip: the run parks ESCALATED, state
    intact) or ``PolicyViolationError`` (deny: the planner gets the error) to stop the call;
    ``after_call`` settles what ``before_call`` reserved (``call.scratch``)."""

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        return None

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        return None

    async def after_step(self, scope: RunScope, step: StepView) -> None:
        """At each step boundary of a run that goes on, before the step commits (see
        ``tether.core.governor.StepObserver``): may raise ``EscalationSignal`` (the step
        commits, the run parks ESCALATED) or note metadata to commit (``step.metadata``)."""
        return None

    async def end_execution(self, store: RunStore, run: RunRecord) -> None:
        """The run's execution in this process ended, for any reason (see
        ``tether.core.governor.ExecutionEnd``): write what the part deferred."""
        return None

    async def on_resume(
        self, store: RunStore, run: RunRecord, escalation: Mapping[str, Any], value: Any
    ) -> dict[str, Any] | None:
        """``Runtime.resume`` of a run this workflow's governance escalated: a part acts on
        the answer to its own trip (``escalation["kind"]``, ``["details"]``): checks ``value``
        (``InvalidInputError`` says what it takes) and returns run metadata to commit with the
        resume (a raised limit). Other escalations are not its business: return None."""
        return None


class AuditSink:
    """Where governance decisions are recorded (``tether.governance.audit`` keeps them in a
    hash-chained log); the default forgets them."""

    async def record(self, scope: RunScope, kind: str, data: dict[str, Any]) -> None:
        return None


@dataclass(slots=True)
class RunScope:
    """What a part sees of the run making a call."""

    run: RunRecord
    """The run as its execution in this process began (ids, parent, tenant, metadata)."""
    store: RunStore
    clock: Clock
    ctx: Any
    """The calling node's ``RunContext`` (``run_id``, ``node``, ``step``, ``emit``...)."""
    audit_sink: AuditSink

    async def audit(self, kind: str, data: dict[str, Any]) -> None:
        """Record one governance decision (a policy verdict, a trip, an approval...)."""
        await self.audit_sink.record(self, kind, data)

    def emit(self, type: str, data: dict[str, Any]) -> None:
        """Put an event on the run's stream (``ctx.emit``)."""
        self.ctx.emit(type, data)


class RunGovernor:
    """The ``Governor`` of one run's execution: asks each part in order before a call (the
    first that stops it wins) and every part that was asked, in reverse, after it."""

    def __init__(
        self,
        parts: Sequence[GovernancePart],
        store: RunStore,
        run: RunRecord,
        clock: Clock,
        audit_sink: AuditSink,
    ) -> None:
        self.parts = tuple(parts)
        self.store = store
        self.run = run
        self.clock = clock
        self.audit_sink = audit_sink
        self._step_parts = tuple(
            p for p in self.parts if type(p).after_step is not GovernancePart.after_step
        )
        self._end_parts = tuple(
            p for p in self.parts if type(p).end_execution is not GovernancePart.end_execution
        )

    def scope(self, ctx: Any) -> RunScope:
        return RunScope(self.run, self.store, self.clock, ctx, self.audit_sink)

    async def before_call(self, run: Any, call: GovernedCall) -> None:
        scope = self.scope(run)
        asked: list[GovernancePart] = []
        call.scratch["_asked"] = asked
        call.scratch["_scope"] = scope  # after_call of the same call and context reuses it
        for part in self.parts:
            asked.append(part)
            try:
                await part.before_call(scope, call)
            except BaseException:
                # the call will not run: let the parts already asked release what they reserved
                failed = CallOutcome(False, error=None)
                for earlier in reversed(asked[:-1]):
                    await earlier.after_call(scope, call, failed)
                await _undo(call)
                raise

    async def after_call(self, run: Any, call: GovernedCall, outcome: CallOutcome) -> None:
        scope: RunScope | None = call.scratch.pop("_scope", None)
        if scope is None or scope.ctx is not run:
            scope = self.scope(run)
        asked: Sequence[GovernancePart] | None = call.scratch.get("_asked")
        for part in reversed(self.parts if asked is None else asked):
            await part.after_call(scope, call, outcome)

    async def after_step(self, step: StepView) -> None:
        """``StepObserver``: every part that watches steps, in order; the first trip wins."""
        if not self._step_parts:
            return
        scope = RunScope(step.run, self.store, self.clock, StepContext(step), self.audit_sink)
        for part in self._step_parts:
            await part.after_step(scope, step)

    async def end_execution(self) -> None:
        """``ExecutionEnd``: every part that deferred writes flushes them. A failure is logged,
        never raised: it must not hide why the execution ended (what stays unwritten is a
        deferred settle: the ledger keeps the call's projection held, conservative)."""
        for part in self._end_parts:
            try:
                await part.end_execution(self.store, self.run)
            except Exception:
                log.exception("run %s: %s could not flush at its end", self.run.run_id, part)


async def _undo(call: GovernedCall) -> None:
    """The ``on_refused`` undos of a call that will not run; one that fails is logged, never
    raised over why the call was stopped."""
    for undo in reversed(call.scratch.pop(REFUSED_UNDO, [])):
        try:
            await undo()
        except Exception:
            log.exception("%s call %s: an undo of its refusal failed", call.kind, call.name)


@dataclass(slots=True)
class StepContext:
    """The ``RunScope.ctx`` of a step boundary: no node is running."""

    view: StepView
    node: str | None = None
    task_id: str | None = None

    @property
    def run_id(self) -> str:
        return str(self.view.run.run_id)

    @property
    def step(self) -> int:
        return self.view.step

    def emit(self, type: str, data: dict[str, Any] | None = None) -> None:
        self.view.emit(type, dict(data or {}))
