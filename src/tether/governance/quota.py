"""``Quota``: what one tenant may spend per period (tokens, cost, runs), across all its runs.

Each period window of each tenant is a ledger row (``quota:<tenant>:<period>:<window start>``)
in the budget table, reserved before each live call and settled after like a run tree's
envelope (``Budget``): the settle of a call that used no more than it held waits in this
process for the next write to its window (``budget_pending``: the next reservation carries it,
one write per call instead of two) or for the end of the run's execution here; until then the
window shows the call's projection held, never less than was spent. A reservation reads
nothing back (``LedgerFit``): it only needs to know whether it fit. A child run is charged to
its root run's tenant; a run counts once, with the first live call of its root that fits
(reserved with that call, and marked counted only once the reservation holds: a run whose
first call is refused, for runs or for tokens, is not counted, and asks again when resumed). A
call that does not fit trips the run with ``kind="quota"`` (ESCALATED, state intact);
``resume`` lets it try again (it fits once the window has rolled over, or after
``store.set_ledger_limits`` raised the quota), and resuming a run refused for ``runs`` admits
it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, NoReturn

from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.finite import is_number
from tether.core.governor import CallOutcome, GovernedCall
from tether.governance import budget_pending as pending
from tether.governance.budget_ledger import charged, held, tokens_of, trip
from tether.governance.budget_limits import QUOTA_DIMENSIONS, check_limits
from tether.governance.envelope import Envelopes, ledger_store
from tether.governance.scope import GovernancePart, RunScope
from tether.store.budget import BudgetStore
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

PERIODS = {"minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0}
NO_TENANT = "-"
"""The tenant name runs without one are counted under."""
HINT = "resume the run once the window has rolled over, or raise the quota and resume"


def period_seconds(period: Any) -> float:
    if isinstance(period, str):
        if period not in PERIODS:
            raise ConfigurationError(
                f"Quota(period={period!r}): use one of {sorted(PERIODS)} or a number of seconds"
            )
        return PERIODS[period]
    if isinstance(period, bool) or not isinstance(period, int | float):
        raise ConfigurationError(f"Quota(period=...) takes a name or seconds, got {period!r}")
    if not is_number(period) or period <= 0:
        raise ConfigurationError(f"Quota(period=...) must be > 0 seconds, got {period!r}")
    return float(period)


class Quota(GovernancePart):
    """A per-tenant limit per period. ``tenant``: whose runs it limits (None: every tenant,
    each in its own window rows); ``period``: ``"minute"``, ``"hour"``, ``"day"``, ``"week"``
    or seconds (windows are aligned to the epoch); ``tokens``, ``cost``, ``runs``: the limits
    (None: unlimited)."""

    def __init__(
        self,
        *,
        tenant: str | None = None,
        period: str | float = "day",
        tokens: float | None = None,
        cost: float | None = None,
        runs: float | None = None,
    ) -> None:
        given = {"tokens": tokens, "cost": cost, "runs": runs}
        try:
            self.limits = check_limits(
                {k: v for k, v in given.items() if v is not None}, "Quota", QUOTA_DIMENSIONS
            )
        except InvalidInputError as exc:
            raise ConfigurationError(str(exc)) from None
        if not self.limits:
            raise ConfigurationError("Quota(...) needs at least one of tokens=, cost=, runs=")
        self.tenant = tenant
        self.period = period_seconds(period)
        self.envelopes = Envelopes()
        self._counting: dict[str, asyncio.Lock] = {}

    def window(self, tenant: str, now: float) -> tuple[str, float]:
        start = math.floor(now / self.period) * self.period
        return f"quota:{tenant}:{self.period:g}:{start:.0f}", start

    async def _window(self, scope: RunScope) -> tuple[BudgetStore, str, str | None] | None:
        """The tenant's current window (opened), and the marker that says a root run was
        counted (None for a child run: its root counts)."""
        env = await self.envelopes.of(scope.store, scope.run)
        tenant = env.tenant or NO_TENANT
        if self.tenant is not None and tenant != self.tenant:
            return None
        store = ledger_store(scope.store)
        key, start = self.window(tenant, scope.clock.now())
        await self.envelopes.open(store, key, self.limits, start)
        marker = f"quota-run:{self.period:g}:{scope.run.run_id}"
        return store, key, marker if env.depth == 0 else None

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        found = await self._window(scope)
        if found is None:
            return
        store, key, marker = found
        hold = tokens_of(held(call))
        if marker is not None and not self.envelopes.known(marker):
            hold = await self._count(scope, call, store, key, marker, hold)
        elif not await pending.fit_with(store, key, hold, False):
            await self._trip(scope, call, store, key, hold)
        call.scratch["quota"] = (key, hold)

    async def _count(
        self,
        scope: RunScope,
        call: GovernedCall,
        store: BudgetStore,
        key: str,
        marker: str,
        hold: dict[str, float],
    ) -> dict[str, float]:
        """A call of a root run: while the run is not counted, reserve the run with the
        call, and mark it counted only once that reservation holds (a run refused, for runs
        or for tokens, is not counted: resumed, it asks again). Returns what the call holds.
        The run's calls made at the same time (all in this process: it holds the run's
        lease) take turns, so one counts it and the others see it counted."""
        lock = self._counting.setdefault(marker, asyncio.Lock())
        try:
            async with lock:
                counted = await self.envelopes.marked(store, marker)
                amounts = hold if counted or "runs" not in self.limits else {**hold, "runs": 1.0}
                if not await pending.fit_with(store, key, amounts, False):
                    await self._trip(scope, call, store, key, amounts)
                if not counted and not await self.envelopes.first_time(store, marker, 0):
                    # another process counted it in the meantime: give the run back
                    if "runs" in amounts:
                        await store.settle_ledger(key, {"runs": 1.0}, {})
                    return hold
                return amounts
        finally:
            if not lock.locked():
                self._counting.pop(marker, None)

    async def _trip(
        self,
        scope: RunScope,
        call: GovernedCall,
        store: BudgetStore,
        key: str,
        hold: dict[str, float],
    ) -> NoReturn:
        row = await store.get_ledger(key)
        assert row is not None
        dim = row.refusing(hold) or "tokens"
        what = "this run" if dim == "runs" else f"this {call.kind} call ({call.name})"
        signal = trip("quota", row, dim, hold.get(dim, 0.0), what, HINT, window=key)
        await scope.audit("quota_trip", dict(signal.details))
        raise signal

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        reserved = call.scratch.pop("quota", None)
        if reserved is None:
            return
        key, hold = reserved
        used = tokens_of(charged(call, hold, outcome))
        if "runs" in hold:
            used["runs"] = 1.0  # the run was admitted, whatever became of this call
        store = ledger_store(scope.store)
        # within what it held: the settle may wait (the window overstates until it is written)
        if all(v <= hold.get(d, 0.0) for d, v in used.items()) and pending.defer(
            store, key, hold, used
        ):
            return
        await pending.settle(store, key, hold, used)

    async def end_execution(self, store: RunStore, run: RunRecord) -> None:
        """The run's execution in this process ended: write the settles still pending on its
        tenant's windows of this period (the current one, and one that rolled over since a
        settle began waiting on it)."""
        budgets = ledger_store(store)
        if not pending.has_pending(budgets):
            return
        env = await self.envelopes.of(store, run)
        tenant = env.tenant or NO_TENANT
        if self.tenant is not None and tenant != self.tenant:
            return
        await pending.flush_prefix(budgets, f"quota:{tenant}:{self.period:g}:")
