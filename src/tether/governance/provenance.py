"""The injection guard: which content of a run is untrusted, and whether a write derives from it.

Content enters a run untrusted when it comes from outside: every tool result (a live call
reports it to the guard; a journaled one is read back from the run's effect journal), the run's
input (what a user sent; ``trust_input=True`` when the submitter is the principal), and any
value a node marks with :func:`untrusted` (retrieval results, fetched pages). Trusted content is
the run's metadata (set by the operator), the guard's ``trusted`` values (system constants) and
the results of ``trusted_tools``. The provenance of a run's content is kept in its journal, so
it survives resumes, crashes and moves between workers: a run is one turn, and everything that
entered it untrusted stays untrusted for the rest of that turn, wherever it went in the state.

Before a tool call whose scope is in ``scopes`` (write and destructive), the guard asks whether
any argument derives from untrusted content and not from trusted content (the matching rule:
``provenance_index``). ``PolicySet`` turns an allowed call that does into an escalation: the
call needs an approval instead of running. A run that committed its plan before reading
(``commit_plan``) is also held to it: see ``tether.governance.plan``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from tether.core.governor import CallOutcome, GovernedCall, governor_of
from tether.core.journal import IN_FLIGHT, current_journal
from tether.governance.plan import PLAN_KIND, Open, PlannedCall, PlanState, Template, plan_steps
from tether.governance.policy_facts import tool_scope
from tether.governance.provenance_index import (
    ContentIndex,
    Derivation,
    derive,
    identifiers,
    unsourced,
)
from tether.governance.scope import RunScope
from tether.store.types import RunRecord

T = TypeVar("T")
PROVENANCE_KIND = "provenance"
"""The journal kind of a value marked with ``untrusted()`` / ``trusted()``."""
OFF_PLAN = "is not a step left in"
"""``Derivation.how`` of a call outside the run's trusted plan."""
NOT_FROM_SOURCE = "does not come from"
"""``Derivation.how`` of an argument the plan reads from a step, with a value the step lacks."""


class _Ledger:
    """One run execution's content, indexed lazily (only when a write is checked), and its
    plan. Until it is loaded from the journal, the journal holds the content, and live plans
    are not noted (the load reads them in order): a live tool result only waits in ``waiting``
    while its call's journal record is not written (a load then would not read it), values
    marked live are journaled before they are noted, so neither is kept (a long run making
    only reads keeps no result of a call that ended)."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.untrusted = ContentIndex()
        self.trusted = ContentIndex()
        self.pending: list[tuple[Any, bool, str]] = []
        self.waiting: list[tuple[Any, bool, str, str | None]] = []
        """Live tool results (with their journal keys) seen before the load."""
        self.loaded = False
        self.seen_untrusted = False
        """Whether untrusted content has entered the run (in journal order)."""
        self.plan: PlanState | None = None
        self.late_plans = 0
        """Plans committed after untrusted content entered: they do not count."""
        self.sources: dict[int, ContentIndex] = {}

    def content(self, value: Any, trusted: bool, source: str) -> None:
        """Content the journal holds already (a marked value): the load reads it."""
        if self.loaded:
            self.pending.append((value, trusted, source))
            if not trusted:
                self.seen_untrusted = True

    def result(self, value: Any, trusted: bool, source: str, key: str | None) -> None:
        """A live tool call's result, before the call's journal record is written (``key``:
        what it is journaled under; None: it may not be, kept)."""
        if self.loaded:
            self.content(value, trusted, source)
            return
        run_id = self.run.run_id
        if self.waiting:  # those whose calls ended are in the journal now
            self.waiting = [
                w for w in self.waiting if w[3] is None or IN_FLIGHT.running(run_id, w[3])
            ]
        self.waiting.append((value, trusted, source, key))

    def take_waiting(self) -> None:
        """The load: the live results still waiting come first, as they came."""
        self.pending += [(v, t, s) for v, t, s, _ in self.waiting]
        self.waiting.clear()

    def commit(self, steps: list[PlannedCall]) -> None:
        if self.seen_untrusted:
            self.late_plans += 1
        else:
            self.plan = PlanState(steps)
            self.sources.clear()

    def used(self, tool: str, args: Any, result: Any) -> None:
        if self.plan is not None and isinstance(args, dict):
            self.plan.use(tool, args, result)

    def source(self, step: int) -> ContentIndex:
        """The result of plan step ``step`` (empty until it ran)."""
        idx = self.sources.get(step)
        if idx is None:
            idx = ContentIndex()
            if self.plan is not None and step in self.plan.results:
                idx.add(self.plan.results[step], f"plan step {step}")
                self.sources[step] = idx
        return idx

    def flush(self) -> None:
        for value, trusted, source in self.pending:
            (self.trusted if trusted else self.untrusted).add(value, source)
        self.pending.clear()


@dataclass
class InjectionGuard:
    """Which content is untrusted, and which calls must not derive from it (see the module)."""

    scopes: Sequence[str] = ("write", "destructive")
    trust_input: bool = False
    trust_metadata: bool = True
    trusted_tools: Sequence[str] = ()
    """Globs of tools whose results are system data, not outside content."""
    trusted: Sequence[Any] = ()
    """System values (constants, configuration) arguments may carry."""
    exempt_tools: Sequence[str] = ()
    """Globs of tools the guard never checks."""
    small_numbers: float = 10
    """Numbers below this (absolute) are never reported: counts and flags are everywhere."""
    max_runs: int = 1024
    _ledgers: OrderedDict[str, _Ledger] = field(default_factory=OrderedDict, repr=False)

    def applies(self, call: GovernedCall) -> bool:
        if call.kind != "tool" or tool_scope(call.contract) not in self.scopes:
            return False
        return not self.exempt_tools or not any(
            fnmatchcase(call.name, g) for g in self.exempt_tools
        )

    def _trusted_tool(self, name: str) -> bool:
        return bool(self.trusted_tools) and any(fnmatchcase(name, g) for g in self.trusted_tools)

    def ledger(self, scope: RunScope) -> _Ledger:
        run_id = scope.run.run_id
        led = self._ledgers.get(run_id)
        if led is None or led.run is not scope.run:  # a new execution: read the journal again
            led = self._ledgers[run_id] = _Ledger(scope.run)
        self._ledgers.move_to_end(run_id)
        while len(self._ledgers) > self.max_runs:
            self._ledgers.popitem(last=False)
        return led

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        """A live tool call's result enters the run as content."""
        if call.kind == "tool" and outcome.ok:
            trusted = self._trusted_tool(call.name)
            led = self.ledger(scope)
            key = call.effect_key
            led.result(outcome.result, trusted, f"tool {call.name}", key)
            if led.loaded:
                led.used(call.name, dict(call.args), outcome.result)

    def note(self, run_id: str, value: Any, trusted: bool, source: str) -> None:
        """A value marked by ``untrusted()`` / ``trusted()`` in a live execution."""
        led = self._ledgers.get(run_id)
        if led is not None:
            led.content(value, trusted, source)

    def note_plan(self, run_id: str, steps: list[PlannedCall]) -> None:
        """A plan committed live (``commit_plan``)."""
        led = self._ledgers.get(run_id)
        if led is not None and led.loaded:
            led.commit(steps)

    async def check(self, scope: RunScope, call: GovernedCall) -> list[Derivation]:
        """The arguments of ``call`` that derive from untrusted content of this run."""
        led = self.ledger(scope)
        if not led.loaded:
            await self._load(scope, led)
        led.flush()
        args = dict(call.args)
        plan = led.plan
        if plan is not None:
            step = plan.match(call.name, args)
            if step is not None:  # the plan decided this call
                return self._planned(led, plan.steps[step], args)
            if led.seen_untrusted and self.applies(call):
                left = ", ".join(plan.remaining()) or "none"
                return [
                    Derivation("$", call.name, OFF_PLAN, "the run's plan", f"steps left: {left}")
                ]
        found = derive(args, led.untrusted, led.trusted, self.small_numbers)
        if found and led.late_plans and plan is None:
            late = "a plan committed after untrusted content entered the run does not count"
            found.append(Derivation("$", call.name, "is not decided by a plan", late))
        return found

    def _planned(self, led: _Ledger, step: PlannedCall, args: dict[str, Any]) -> list[Derivation]:
        """A call that fills ``step``: its unnamed arguments are checked by value provenance;
        each open one with a source must come from that step's result or trusted content; an
        open one without may not carry an identifier (a link, an account) untrusted content
        gave: what decides where things go must come from where the plan said."""
        rest = {k: v for k, v in args.items() if k not in step.args}
        found = derive(rest, led.untrusted, led.trusted, self.small_numbers)
        for name, slot in step.args.items():
            if name not in args:
                continue
            source = getattr(slot, "source", None)
            if source is None:
                if isinstance(slot, Open):  # prose and values flow, identifiers need a source
                    found += identifiers({name: args[name]}, led.untrusted, led.trusted)
                continue
            value = slot.slots(args[name]) if isinstance(slot, Template) else args[name]
            for path, leaf in unsourced({name: value}, [led.source(source), led.trusted]):
                found.append(Derivation(path, leaf, NOT_FROM_SOURCE, f"plan step {source}"))
        return found

    async def _load(self, scope: RunScope, led: _Ledger) -> None:
        run = scope.run
        (led.trusted if self.trust_input else led.untrusted).add(run.input, "the run's input")
        led.seen_untrusted = not self.trust_input and run.input is not None
        if self.trust_metadata:
            led.trusted.add(run.metadata, "run metadata")
        led.trusted.add(list(self.trusted), "system values")
        effects = await scope.store.list_effects(run.run_id)
        led.take_waiting()
        for eff in effects:
            if eff.status != "done" or not isinstance(eff.request, dict):
                continue
            if eff.kind == "tool":
                name = str(eff.request.get("tool", "?"))
                trusted = self._trusted_tool(name)
                led.pending.append((eff.result, trusted, f"tool {name}"))
                led.seen_untrusted |= not trusted
                led.used(name, eff.request.get("args"), eff.result)
            elif eff.kind == PROVENANCE_KIND:
                trusted = eff.request.get("trust") == "trusted"
                led.pending.append((eff.result, trusted, str(eff.request.get("source"))))
                led.seen_untrusted |= not trusted
            elif eff.kind == PLAN_KIND:
                led.commit(plan_steps(eff.request))
        led.loaded = True


async def untrusted(value: T, *, source: str = "retrieval", ctx: Any = None) -> T:
    """Mark ``value`` (retrieved documents, a fetched page...) as untrusted content of the
    running turn and return it: write calls whose arguments derive from it need approval.
    Journaled, so the mark survives resumes; outside a run it does nothing."""
    return await _mark(value, False, source, ctx)


async def trusted(value: T, *, source: str = "system", ctx: Any = None) -> T:
    """Mark ``value`` as trusted content of the running turn (operator or system data):
    arguments carrying it are not reported even when untrusted content carries it too."""
    return await _mark(value, True, source, ctx)


async def _mark(value: T, is_trusted: bool, source: str, ctx: Any) -> T:
    ctx = ctx if ctx is not None else current_journal()
    if ctx is None:
        return value

    async def give() -> T:
        return value

    request = {"trust": "trusted" if is_trusted else "untrusted", "source": source}
    out: T = await ctx.journaled(PROVENANCE_KIND, request, give)
    for part in getattr(governor_of(ctx), "parts", ()):
        guard = getattr(part, "guard", None)
        if isinstance(guard, InjectionGuard):
            guard.note(ctx.run_id, out, is_trusted, source)
    return out
