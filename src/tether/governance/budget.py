"""``Budget``: one envelope per run tree, shared by the root run and all its child runs.

Each live model call reserves what it may cost at most (``GovernedCall.projected``: prompt
tokens, ``max_tokens``, their price) in the root's ledger row, in one atomic conditional write,
before it runs, and settles what it actually used after (see ``tether.store.budget``). That
holds for a call outside the run's journal too (``scratch["nested"]``: a model consulted inside
another model call, a guard model, a ``journal=False`` call): every model call made on the
run's behalf is bounded, and calls made at once never reserve past a limit together. What is
known exactly beforehand (a tool call and its declared cost, a step, a child run) is charged
in one conditional write instead (``charge_ledger``), given back if the call does not run.
A reservation that does not fit trips the run: ``EscalationSignal(kind="budget",
dimension=..., limit=..., usage=...)`` parks it ESCALATED with its state intact, and
``resume(run_id, {"raise_budget": {"cost": 2.0}})`` sets higher limits and continues. Calls
replayed from the journal are not live: they reserve and cost nothing. Steps are counted at
each step boundary, child runs at their first call, depth and wall-clock time checked at each
call.

A model call's settle is deferred (``budget_pending``) when it used no more than it held and
the ledger, counting every call in flight at its projection, is short of every soft limit not
yet announced: it rides on the next write to the envelope from this process, or is written
when the run's execution here ends (``end_execution``). One write per model call instead of
two; a settle that could cross a soft limit or that overran its hold is written at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tether.core.errors import ConfigurationError, EscalationSignal, InvalidInputError
from tether.core.governor import CallOutcome, GovernedCall, StepView
from tether.governance import budget_pending as pending
from tether.governance.budget_ledger import charged, held, trip
from tether.governance.budget_limits import check_limits, check_raise
from tether.governance.budget_soft import COUNTED, SOFT, announce, note
from tether.governance.envelope import Envelope, Envelopes, ledger_store
from tether.governance.scope import GovernancePart, RunScope
from tether.store.budget import BudgetStore, Ledger
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

log = logging.getLogger("tether.governance.budget")
_UNPRICED: set[str] = set()
"""Models already warned about: a cost limit cannot hold them (no price)."""

HINT = "resume with {{'raise_budget': {{'{dim}': <new limit>}}}} to continue, or cancel the run"


class Budget(GovernancePart):
    """Limits of a run tree (None: unlimited): ``input_tokens``, ``output_tokens``, ``tokens``
    (input + output), ``cost``, ``steps``, ``tool_calls``, ``model_calls``, ``wall_seconds``
    (since the root run was created), ``depth`` (of child runs: 1 allows children, not
    grandchildren) and ``child_runs``. ``soft``: the fraction of any limit at which the agent
    is told to wrap up (a note in its next prompt and a ``budget_soft_limit`` event)."""

    def __init__(
        self,
        *,
        input_tokens: float | None = None,
        output_tokens: float | None = None,
        tokens: float | None = None,
        cost: float | None = None,
        steps: float | None = None,
        tool_calls: float | None = None,
        model_calls: float | None = None,
        wall_seconds: float | None = None,
        depth: float | None = None,
        child_runs: float | None = None,
        soft: float = 0.8,
    ) -> None:
        given = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "tokens": tokens,
            "cost": cost,
            "steps": steps,
            "tool_calls": tool_calls,
            "model_calls": model_calls,
            "wall_seconds": wall_seconds,
            "depth": depth,
            "child_runs": child_runs,
        }
        try:
            self.limits = check_limits({k: v for k, v in given.items() if v is not None}, "Budget")
        except InvalidInputError as exc:
            raise ConfigurationError(str(exc)) from None
        if isinstance(soft, bool) or not isinstance(soft, int | float) or not 0 < soft <= 1:
            raise ConfigurationError(f"Budget(soft=...) must be in (0, 1], got {soft!r}")
        self.soft = float(soft)
        self.envelopes = Envelopes()

    def check_overrides(self, budget: Mapping[str, Any]) -> dict[str, float]:
        """``start(..., budget=...)``: limits for one run tree over the workflow's."""
        return check_limits(budget, "start(budget=...)")

    # -- the envelope ---------------------------------------------------------------------
    async def envelope(self, scope: RunScope) -> tuple[BudgetStore, Envelope]:
        store = ledger_store(scope.store)
        env = await self.envelopes.of(scope.store, scope.run)
        if not self.envelopes.known(env.key):  # opened once per process
            limits = {**self.limits, **env.overrides}
            await self.envelopes.open(store, env.key, limits, env.started_at)
        if env.depth and await self.envelopes.first_time(store, f"child:{scope.run.run_id}", 0):
            amounts = {"child_runs": 1.0}
            await self._take(store, scope, env, amounts, True, f"child run {env.depth}")
        return store, env

    async def _take(
        self,
        store: BudgetStore,
        scope: RunScope,
        env: Envelope,
        amounts: dict[str, float],
        exact: bool,
        what: str,
    ) -> Ledger:
        """Reserve ``amounts`` (charge them, ``exact``: nothing to settle) in one conditional
        write, or trip; the ledger after it. An envelope that had no limit at all when this
        process opened it is written without reading the ledger back (``fit_with``: about a
        third of the write's cost on SQLite): with no limit there is no depth, wall-clock time
        or soft limit to check it against, and the write's own condition still refuses what
        does not fit, so a stand-in with no limits serves. A limit set on it since
        (``set_ledger_limits`` by hand; a budget trip needs a limit, so no resume raises one)
        still refuses atomically, and is read from the next write that reads the ledger
        anyway (a refusal, a settle written at once) on."""
        key = env.key
        if self.envelopes.unlimited(key):
            if await pending.fit_with(store, key, amounts, exact):
                return Ledger(key, started_at=env.started_at)
            row = None
        else:
            dims = self.envelopes.dims(key)
            # a charge that leaves the ledger short of every soft limit not announced, with
            # no limit but counters: nothing to read back (no trip or announcement follows);
            # anything else is written as usual, read back lean: the limits, the limited
            # counters and the marks
            if exact and await pending.charge_calm(store, key, amounts, dims, self.soft):
                return Ledger(key, started_at=env.started_at)
            row = await pending.take_lean(store, key, amounts, exact, dims)
        if row is None:
            await self._refused(store, scope, env, amounts, what)
        assert row is not None
        self.envelopes.saw(row)
        return row

    async def _refused(
        self,
        store: BudgetStore,
        scope: RunScope,
        env: Envelope,
        amounts: dict[str, float],
        what: str,
    ) -> None:
        row = await store.get_ledger(env.key)
        assert row is not None
        if row.limits:
            self.envelopes.limited(env.key)
            self.envelopes.saw(row)
        dim = row.refusing(amounts) or next(iter(amounts))
        signal = trip("budget", row, dim, amounts.get(dim, 0.0), what, HINT.format(dim=dim))
        signal.details["envelope"] = env.root_id
        await scope.audit("budget_trip", {"envelope": env.key, **signal.details})
        raise signal

    async def _check_fixed(self, scope: RunScope, env: Envelope, row: Ledger) -> float:
        """Trip on depth or wall-clock time; returns the seconds since the root started."""
        elapsed = scope.clock.now() - env.started_at
        for dim, usage in (("depth", float(env.depth)), ("wall_seconds", elapsed)):
            limit = row.limits.get(dim)
            if limit is not None and usage > limit:
                reason = f"budget {dim}: {usage:g} is past the limit {limit:g}; " + HINT.format(
                    dim=dim
                )
                details = {"dimension": dim, "limit": limit, "usage": usage}
                await scope.audit("budget_trip", {"envelope": env.key, **details})
                raise EscalationSignal(reason, kind="budget", envelope=env.root_id, **details)
        return elapsed

    # -- the hooks ------------------------------------------------------------------------
    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        store, env = await self.envelope(scope)
        hold = held(call)
        # a tool call's cost is known before it runs (one call, its declared cost): charged
        # at once, in one write; a model call's tokens only after: reserved, then settled
        exact = call.kind == "tool"
        row = await self._take(
            store, scope, env, hold, exact, f"this {call.kind} call ({call.name})"
        )
        call.scratch["budget"] = (env.key, hold, exact, row)
        if call.kind == "model" and "cost" in row.limits and "cost" not in call.projected:
            _warn_unpriced(call.name)
        try:
            elapsed = await self._check_fixed(scope, env, row)
        except BaseException:
            await self._release(store, env.key, hold, exact)
            raise
        await note(store, call, row, self.soft, elapsed)
        if exact:
            await announce(store, scope, row, self.soft, elapsed)

    @staticmethod
    async def _release(store: BudgetStore, key: str, hold: dict[str, float], exact: bool) -> None:
        """Give back what ``before_call`` took for a call that will not run."""
        if exact:
            await pending.settle(store, key, {}, {d: -v for d, v in hold.items()})
        else:
            await pending.settle(store, key, hold, {})

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        reserved = call.scratch.pop("budget", None)
        if reserved is None:
            return
        key, hold, exact, before = reserved
        store = ledger_store(scope.store)
        used = charged(call, hold, outcome)
        if exact:
            if used == hold:
                return  # charged right, in before_call
            extra = {d: used.get(d, 0.0) - hold.get(d, 0.0) for d in {*hold, *used}}
            row = await pending.settle(store, key, {}, extra)
        else:
            elapsed = scope.clock.now() - before.started_at
            if self._deferrable(before, hold, used, elapsed) and pending.defer(
                store, key, hold, used
            ):
                return
            row = await pending.settle(store, key, hold, used)
        if row is not None:
            if row.limits:  # read back anyway: a limit set since is seen from here on
                self.envelopes.limited(key)
                self.envelopes.saw(row)
            await announce(store, scope, row, self.soft, scope.clock.now() - row.started_at)

    def _deferrable(
        self, row: Ledger, hold: dict[str, float], used: dict[str, float], elapsed: float
    ) -> bool:
        """Whether a model call's settle may wait: it used no more than it held in any
        dimension (until written, the ledger overstates), and ``row`` (as the call's
        reservation left it, every call in flight at its projection) is short of each soft
        limit not announced yet (the settle announces none: nothing changes by waiting)."""
        if any(v > hold.get(d, 0.0) for d, v in used.items()):
            return False
        for dim, limit in row.limits.items():
            if dim not in SOFT or dim in row.evented or limit <= 0:
                continue
            usage = row.spent(dim) if dim in COUNTED else elapsed
            if usage >= self.soft * limit:
                return False
        return True

    async def end_execution(self, store: RunStore, run: RunRecord) -> None:
        """The run's execution in this process ended (completed, failed, escalated, handed
        back, cancelled, lease lost...): write the settles still pending on its envelope."""
        budgets = ledger_store(store)
        if not pending.has_pending(budgets):
            return
        env = await self.envelopes.of(store, run)
        await pending.flush(budgets, env.key)

    async def after_step(self, scope: RunScope, step: StepView) -> None:
        store, env = await self.envelope(scope)
        row = await self._take(store, scope, env, {"steps": 1.0}, True, f"step {step.step + 1}")
        elapsed = await self._check_fixed(scope, env, row)
        await announce(store, scope, row, self.soft, elapsed)

    async def on_resume(
        self, store: RunStore, run: RunRecord, escalation: Mapping[str, Any], value: Any
    ) -> dict[str, Any] | None:
        """``resume(run_id, {"raise_budget": {dimension: new limit}})`` of a budget trip."""
        if escalation.get("kind") != "budget" or not isinstance(value, Mapping):
            return None
        if "raise_budget" not in value:
            return None
        ledgers = ledger_store(store)
        env = await self.envelopes.of(store, run)
        row = await ledgers.get_ledger(env.key)
        current = row.limits if row is not None else {**self.limits, **env.overrides}
        raised = check_raise(current, value["raise_budget"])
        if row is None:
            await ledgers.open_ledger(env.key, {**current, **raised}, env.started_at)
        else:
            await ledgers.set_ledger_limits(env.key, raised)
        self.envelopes.limited(env.key)
        self.envelopes.saw(Ledger(env.key, {**current, **raised}))
        return None


def _warn_unpriced(model: str) -> None:
    """Once per model: a cost limit is in force but the model has no price, so its calls
    count nothing against it (its tokens still count against a token limit)."""
    if model not in _UNPRICED:
        _UNPRICED.add(model)
        log.warning(
            "a cost budget is set but model %s has no price: its calls cost nothing against "
            "it; give it one (Model.prices, or a TETHER_PRICES file) or limit tokens instead",
            model,
        )
