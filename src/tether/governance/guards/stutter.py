"""The stuttering check: the same tool with the same arguments more than N times in a run
trips the run before the next such call executes.

The known failure it stops: a support agent read an ambiguous "success" from a refund API as a
failure and refunded the same order 40 times in two minutes. The count comes from the run's
effect journal (each tool call's intent records ``{"tool": name, "args": args}``), so it
survives crashes, restarts and resumes: a run recovered elsewhere still knows it refunded three
times. Arguments compare as canonical JSON (sorted keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tether.core import serde
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.governor import CallOutcome, GovernedCall
from tether.governance.guards.base import (
    Recent,
    raised_limit,
    run_limit,
    trip,
    tripped,
    with_limit,
)
from tether.governance.scope import GovernancePart, RunScope
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

GUARD = "stutter"

# per run: the execution it belongs to (its RunRecord), and the journal keys of the tool calls
# made so far per (tool, canonical arguments) signature
_Calls = tuple[RunRecord, dict[str, set[str]]]


def signature(tool: str, args: Mapping[str, Any]) -> str:
    """The identity of a call for this guard: the tool and its arguments as canonical JSON."""
    return serde.fingerprint([tool, dict(args)])


def _positive(what: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(f"StutterGuard: {what} must be a whole number >= 1, got {n!r}")
    return n


class StutterGuard(GovernancePart):
    """Trip before a tool call that repeats an earlier call of the run (same tool, same
    arguments) more than ``max_repeats`` times; ``per_tool`` sets other limits for some tools
    (a polling tool may repeat more), ``ignore`` exempts tools entirely."""

    def __init__(
        self,
        max_repeats: int = 3,
        *,
        per_tool: Mapping[str, int] | None = None,
        ignore: Iterable[str] = (),
    ) -> None:
        self.max_repeats = _positive("max_repeats", max_repeats)
        self.per_tool = {t: _positive(f"per_tool[{t!r}]", n) for t, n in (per_tool or {}).items()}
        self.ignore = frozenset(ignore)
        self._runs: Recent[str, _Calls] = Recent()

    def limit(self, run: RunRecord, tool: str) -> int:
        """How many times ``run`` may make the same call of ``tool``: the configured limit, or
        the one a resume raised for the run when higher."""
        configured = self.per_tool.get(tool, self.max_repeats)
        return max(configured, int(run_limit(run, GUARD, configured)))

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind != "tool" or call.name in self.ignore:
            return
        sig = signature(call.name, call.args)
        key = self._effect_key(call)
        made = (await self._calls(scope)).setdefault(sig, set())
        earlier = len(made - {key})  # a call re-run after a crash is not a repeat of itself
        limit = self.limit(scope.run, call.name)
        if earlier >= limit:
            args = serde.loads(serde.dumps(dict(call.args)))
            shown = serde.dumps(args).decode()
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            await trip(
                scope,
                GUARD,
                f"loop guard 'stutter' tripped: tool {call.name!r} was already called {earlier} "
                f"times in this run with the same arguments {shown} (limit {limit}); call "
                f"{earlier + 1} was stopped before it ran. If the repeats are intended, resume "
                f"the run with {{'raise_limit': {{'stutter': {earlier + 1}}}}} (or more); "
                "otherwise cancel it",
                tool=call.name,
                args=args,
                count=earlier,
                limit=limit,
            )
        if key not in made:
            made.add(key)
            call.scratch[GUARD] = (sig, key)

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        noted = call.scratch.get(GUARD)
        if noted is not None and not outcome.ok and outcome.error is None:
            # a later part stopped the call before it ran: it never reached the journal
            entry = self._runs.get(scope.run.run_id)
            if entry is not None and entry[0] is scope.run:
                entry[1].get(noted[0], set()).discard(noted[1])

    async def on_resume(
        self, store: RunStore, run: RunRecord, escalation: Mapping[str, Any], value: Any
    ) -> dict[str, Any] | None:
        details = tripped(escalation, GUARD)
        if details is None:
            return None
        count = int(details.get("count", 0))
        need = count + 1
        limit = raised_limit(value, GUARD, example=str(need))
        if limit is None:
            raise InvalidInputError(
                f"run {run.run_id} was stopped by the stutter check after {count} identical "
                f"calls of {details.get('tool')!r}; a plain resume would stop it again at once. "
                f"Resume with {{'raise_limit': {{'stutter': {need}}}}} (or more) to let it go "
                "on, or cancel it"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < need:
            raise InvalidInputError(
                f"raise_limit 'stutter' must be a whole number >= {need} (the run already made "
                f"{count} identical calls), got {limit!r}"
            )
        return with_limit(run, GUARD, limit)

    # -- the count, from the journal -----------------------------------------------------
    @staticmethod
    def _effect_key(call: GovernedCall) -> str:
        """The key the call is journaled under: the one the executor derived (a tool's
        idempotency rule's), else the run's journal key."""
        return str(call.effect_key or call.key)

    async def _calls(self, scope: RunScope) -> dict[str, set[str]]:
        """This run's tool calls so far: read from its journal once per execution (a new
        execution after a resume, a crash or on another worker reads it again), then kept
        up to date here as calls pass."""
        run = scope.run
        entry = self._runs.get(run.run_id)
        if entry is not None and entry[0] is run:
            return entry[1]
        calls: dict[str, set[str]] = {}
        for eff in await scope.store.list_effects(run.run_id):
            req = eff.request
            if eff.kind == "tool" and isinstance(req, Mapping) and isinstance(req.get("tool"), str):
                args = req.get("args")
                sig = signature(req["tool"], args if isinstance(args, Mapping) else {})
                calls.setdefault(sig, set()).add(eff.key)
        entry = self._runs.get(run.run_id)  # another task of this execution may have read it
        if entry is not None and entry[0] is run:
            return entry[1]
        self._runs.put(run.run_id, (run, calls))
        return calls
