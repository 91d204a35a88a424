"""``Governance``: what ``compile(governance=...)`` takes.

One object per workflow, holding the parts that govern its runs (see ``scope``): the policy
set, the loop guards, the budget, anything else a team adds as a ``GovernancePart``, and where
decisions are audited. A run's calls ask the parts in this order, the first that stops a call
wins: policies (deny or escalate before anything is counted), then loop guards, then the
budget (a call stopped earlier reserves nothing), then the extra parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from tether.core import serde
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.listed import listed
from tether.governance.audit import StoreAuditLog
from tether.governance.scope import AuditSink, GovernancePart, RunGovernor, RunScope
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

RESUME_AUDITED = frozenset({"budget", "quota", "loop_guard"})
"""Escalation kinds whose resume (a raised limit) is recorded in the audit trail; approvals
audit their own decisions."""


def _plain(value: Any) -> Any:
    """``value`` as JSON data for the audit record (its repr when it is not JSON)."""
    try:
        return serde.loads(serde.dumps(value))
    except Exception:
        return repr(value)


class Governance:
    """Budgets, loop guards, policies and approvals for every run of a workflow."""

    def __init__(
        self,
        *,
        budget: GovernancePart | None = None,
        guards: Sequence[GovernancePart] = (),
        policies: GovernancePart | None = None,
        parts: Sequence[GovernancePart] = (),
        audit: AuditSink | None = None,
    ) -> None:
        guards = listed("Governance(guards=...)", guards, "guards=[StutterGuard()]")
        parts = listed("Governance(parts=...)", parts, "parts=[my_part]")
        named = {"budget": budget, "policies": policies}
        for what, part in [*named.items(), *(("guards", g) for g in guards)]:
            if part is not None and not isinstance(part, GovernancePart):
                raise ConfigurationError(
                    f"Governance({what}=...) takes a tether.governance part, got "
                    f"{type(part).__name__}"
                )
        self.budget = budget
        self.guards = tuple(guards)
        self.policies = policies
        self.extra = tuple(parts)
        self.audit: AuditSink = audit if audit is not None else StoreAuditLog()
        """Where decisions are recorded: by default the hash-chained log in the run's store
        (``StoreAuditLog``); ``AuditSink()`` records nothing."""

    @property
    def parts(self) -> tuple[GovernancePart, ...]:
        """Every part, in the order a call asks them."""
        ordered: list[GovernancePart | None] = [self.policies, *self.guards, self.budget]
        return tuple(p for p in [*ordered, *self.extra] if p is not None)

    def governor(self, store: Any, run: Any, clock: Any) -> RunGovernor:
        """``GovernanceConfig``: the governor of one execution of ``run``."""
        assert isinstance(run, RunRecord)
        return RunGovernor(self.parts, cast(RunStore, store), run, cast(Clock, clock), self.audit)

    async def on_resume(
        self, store: Any, run: Any, escalation: Mapping[str, Any], value: Any
    ) -> dict[str, Any] | None:
        """``ResumeHook``: each part's answer to the resume of a run this governance escalated
        (the part that tripped acts on ``value``; the others return None), merged."""
        meta: dict[str, Any] = {}
        for part in self.parts:
            meta.update(await part.on_resume(store, run, escalation, value) or {})
        if escalation.get("kind") in RESUME_AUDITED and isinstance(run, RunRecord):
            # a human raised a limit (or let a trip go): the decision goes to the audit trail
            clock = cast(Clock, getattr(store, "clock", SYSTEM_CLOCK))
            scope = RunScope(run, cast(RunStore, store), clock, None, self.audit)
            await scope.audit(
                "escalation_resumed",
                {"kind": escalation.get("kind"), "value": _plain(value), "metadata": _plain(meta)},
            )
        return meta or None

    def check_run_budget(self, budget: Mapping[str, Any]) -> dict[str, Any]:
        """``RunBudgetCheck``: ``start(..., budget=...)`` checked by this workflow's budget."""
        check = getattr(self.budget, "check_overrides", None)
        if check is None:
            raise InvalidInputError(
                "budget= needs a workflow compiled with governance=Governance(budget=Budget(...))"
                "; this workflow's governance has no budget to override"
            )
        return cast(dict[str, Any], check(budget))

    def __repr__(self) -> str:
        return f"Governance(parts={[type(p).__name__ for p in self.parts]})"
