"""``PolicySet``: the policy engine, a ``GovernancePart`` (``Governance(policies=...)``).

Before each live tool call (and model call, when a rule of ``kind="model"`` exists) the rules
are asked in priority order (higher first, then in declaration order); the first that matches
decides. Then come the defaults (``defaults=True``: read allowed, write allowed, destructive
escalates; the budget part keeps writes within budget), then ``otherwise``.

The injection guard (``guard=InjectionGuard(...)``, on by default) comes last and only ever
tightens: a write or destructive call the rules *allow* whose arguments derive from untrusted
content of the turn is escalated instead. Rules may also test it themselves (``untrusted``).

Every decision on a tool call is audited (``policy_decision``) and put on the run's stream
with its rule and reason. Deny raises ``PolicyViolationError`` (the planner gets it in the
``ToolResult``, never retried). Escalate runs the call when an approval of exactly this call
was granted, and otherwise requests one and parks the run ESCALATED (``kind="approval"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from tether.core.errors import ConfigurationError, PolicyViolationError
from tether.core.governor import CallOutcome, GovernedCall
from tether.governance.approvals import granted, request_approval
from tether.governance.approvals_rule import ApprovalRule
from tether.governance.policy_facts import facts_of
from tether.governance.policy_rules import ACTIONS, Action, Decision, Facts, Rule
from tether.governance.policy_yaml import parse_document, read_yaml
from tether.governance.provenance import NOT_FROM_SOURCE, OFF_PLAN, InjectionGuard
from tether.governance.provenance_index import Derivation
from tether.governance.scope import GovernancePart, RunScope

DEFAULT_RULES = (
    Rule("default:read", "allow", scope="read", reason="reads are allowed"),
    Rule("default:write", "allow", scope="write", reason="writes are allowed within budget"),
    Rule(
        "default:destructive",
        "escalate",
        scope="destructive",
        reason="destructive calls need an approval",
    ),
)


class PolicySet(GovernancePart):
    """Declarative allow / deny / escalate rules over a run's calls (see the module)."""

    def __init__(
        self,
        rules: Iterable[Rule | Mapping[str, Any]] = (),
        *,
        defaults: bool = True,
        otherwise: str = "allow",
        guard: InjectionGuard | bool | None = True,
        approval: ApprovalRule | Mapping[str, Any] | None = None,
    ) -> None:
        if otherwise not in ACTIONS:
            raise ConfigurationError(
                f"PolicySet(otherwise=...) must be one of {list(ACTIONS)}, got {otherwise!r}"
            )
        if not isinstance(defaults, bool):
            raise ConfigurationError(
                f"PolicySet(defaults=...) takes true or false, got {defaults!r}"
            )
        given = [
            r if isinstance(r, Rule) else Rule.from_dict(r, f"rule #{i + 1}")
            for i, r in enumerate(rules)
        ]
        names = [r.name for r in given]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(f"PolicySet: rule names must be unique; repeated: {dupes}")
        ordered = sorted(enumerate(given), key=lambda p: (-p[1].priority, p[0]))
        self.rules: tuple[Rule, ...] = tuple(r for _, r in ordered)
        self.defaults = defaults
        try:
            self.approval = ApprovalRule.coerce(approval)
        except ConfigurationError as exc:
            raise ConfigurationError(f"PolicySet(approval=...): {exc}") from None
        self.otherwise: str = otherwise
        chain: list[Rule] = [*self.rules, *(DEFAULT_RULES if defaults else ())]
        self._chain = tuple(chain)
        if guard is not None and not isinstance(guard, InjectionGuard | bool):
            raise ConfigurationError(
                "PolicySet(guard=...) takes an InjectionGuard, True (the default guard) or "
                f"False/None (no guard), got {type(guard).__name__}"
            )
        self.guard: InjectionGuard | None = (
            InjectionGuard()
            if guard is True
            else guard
            if isinstance(guard, InjectionGuard)
            else None
        )
        needs = [r.name for r in self.rules if r.needs_provenance]
        if needs and self.guard is None:
            raise ConfigurationError(
                f"policy rule(s) {needs} test 'untrusted', which needs the injection guard; "
                "do not turn it off (guard=None)"
            )
        self._needs_provenance = bool(needs)
        self._models = any(r.kind == "model" for r in self.rules)

    @classmethod
    def from_yaml(cls, source: str | Path, **options: Any) -> PolicySet:
        """Rules from a YAML file (a path) or YAML text (see ``policy_yaml``); keyword options
        (``guard``, ``defaults``, ``otherwise``) override the document's."""
        rules, doc_options = parse_document(read_yaml(source))
        return cls(rules, **{**doc_options, **options})

    def decide(self, facts: Facts) -> Decision:
        """The rules' verdict on ``facts`` (the injection guard is not asked here)."""
        for rule in self._chain:
            if rule.matches(facts):
                return rule.decision()
        action = cast(Action, self.otherwise)
        return Decision(action, "otherwise", f"no rule matched; otherwise {action}")

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind == "model" and not self._models:
            return
        facts = facts_of(scope, call)
        guard = self.guard
        guarded = guard is not None and guard.applies(call)
        evidence: tuple[str, ...] = ()
        found: list[Derivation] = []
        if guard is not None and call.kind == "tool" and (guarded or self._needs_provenance):
            found = await guard.check(scope, call)
            evidence = tuple(d.describe() for d in found)
            facts.untrusted = bool(found)
        decision = self.decide(facts)
        if call.kind == "model" and decision.rule.startswith(("default:", "otherwise")):
            return
        if decision.action == "allow" and guarded and evidence:
            decision = Decision("escalate", "injection_guard", _guard_reason(facts, call, found))
        if evidence:
            decision = replace(decision, evidence=evidence)
        await self._record(scope, call, facts, decision)
        if decision.action == "deny":
            raise PolicyViolationError(
                f"denied by policy {decision.rule!r}: {decision.reason}", tool=call.name
            )
        if decision.action == "escalate" and call.scratch.get("nested"):
            # a call outside the journal (nested in another model call, a guard model's,
            # journal=False) has no key an approval could be bound to: it cannot wait for one
            raise PolicyViolationError(
                f"policy {decision.rule!r} asks for an approval of this model call "
                f"({decision.reason}), but it is made outside the run's journal (inside another "
                "model call, by a guard model, or with journal=False), where no approval can "
                "be waited for: it is refused. Gate the outer call, or make this call a "
                "journaled one of its own",
                tool=call.name,
            )
        if decision.action == "escalate":
            if await granted(scope, call) is not None:
                await self._record(scope, call, facts, decision, approved=True)
                return
            rule = decision.approval or self.approval
            rule = replace(rule, extra={**rule.extra, "policy_rule": decision.rule})
            await request_approval(scope, call, reason=decision.reason, rule=rule)

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        if self.guard is not None:
            await self.guard.after_call(scope, call, outcome)

    async def _record(
        self, scope: RunScope, call: GovernedCall, facts: Facts, d: Decision, approved: bool = False
    ) -> None:
        data: dict[str, Any] = {
            "kind": call.kind,
            "tool": call.name,
            "scope": facts.scope,
            "key": call.key,
            "args": dict(call.args),
            "action": "allow" if approved else d.action,
            "decided": d.action,
            "rule": d.rule,
            "reason": "approved: " + d.reason if approved else d.reason,
        }
        if d.evidence:
            data["untrusted"] = list(d.evidence)
        await scope.audit("policy_decision", data)
        shown = dict(data)  # the event: the record without the arguments, in its key order
        del shown["args"]
        scope.emit("policy_decision", shown)

    def __repr__(self) -> str:
        names = [r.name for r in self.rules]
        return f"PolicySet(rules={names}, defaults={self.defaults}, guard={self.guard})"


def _guard_reason(facts: Facts, call: GovernedCall, found: list[Derivation]) -> str:
    first = found[0]
    if first.how == OFF_PLAN:
        return (
            f"{facts.scope} call {call.name!r} is not a step left in the plan this run "
            f"committed before it read untrusted content ({first.detail}): it needs an approval"
        )
    if first.how == NOT_FROM_SOURCE:
        return (
            f"{facts.scope} call {call.name!r} fills a step of the run's plan, but argument "
            f"{first.path}={first.value!r} does not come from {first.source}, where the plan "
            "says it comes from: it needs an approval"
        )
    return (
        f"{facts.scope} call {call.name!r} with arguments that derive from untrusted "
        f"content of this turn needs an approval: {first.describe()}"
    )
