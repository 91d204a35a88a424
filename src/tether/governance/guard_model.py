"""``GuardModel``: a cheap model (the small one of a cascade) checks a proposed write against
the team's rules, in plain language, before it runs.

A ``GovernancePart`` (``Governance(guards=[GuardModel(model, rules)])``). Before each live tool
call whose scope is in ``scopes`` it asks the model, outside the run's journal (the check is
not part of the run's history: it is made again on a re-run and never shifts the journal keys
of the run's own calls), to answer ``ALLOW``, ``DENY: <why>`` or ``ESCALATE: <why>``. Deny
raises ``PolicyViolationError`` (the planner gets it); escalate runs the call when an approval
of exactly this call was granted, else requests one and parks the run. An answer it cannot
read, or a model error, counts as ``on_unsure`` (escalate by default: no write runs unchecked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace

from tether.core.errors import ConfigurationError, ModelError, PolicyViolationError
from tether.core.governor import GovernedCall
from tether.core.messages import Message
from tether.governance.approvals import granted, request_approval
from tether.governance.approvals_rule import ApprovalRule
from tether.governance.scope import GovernancePart, RunScope
from tether.llm.model import Model

SYSTEM = (
    "You check the actions of an AI agent against its operator's rules before they run. "
    "Answer with exactly one line: ALLOW if the action follows every rule, DENY: <reason> if "
    "it breaks a rule, ESCALATE: <reason> if a human should decide."
)
_ANSWER = re.compile(r"^\s*\**\s*(ALLOW|DENY|ESCALATE)\b\s*[:\-]?\s*(.*)", re.IGNORECASE)


class GuardModel(GovernancePart):
    """Asks ``model`` whether each proposed write follows ``rules`` (see the module)."""

    def __init__(
        self,
        model: Model,
        rules: str | Sequence[str],
        *,
        scopes: Sequence[str] = ("write", "destructive"),
        on_unsure: str = "escalate",
        max_tokens: int = 64,
        approval: ApprovalRule | None = None,
    ) -> None:
        if not isinstance(model, Model):
            raise ConfigurationError(
                f"GuardModel(model=...) takes a Model, got {type(model).__name__}"
            )
        items = [rules] if isinstance(rules, str) else list(rules)
        if not items or not all(isinstance(r, str) and r.strip() for r in items):
            raise ConfigurationError(
                "GuardModel(rules=...) takes one or more non-empty rules in plain text"
            )
        if on_unsure not in ("allow", "deny", "escalate"):
            raise ConfigurationError(
                f"GuardModel(on_unsure=...) must be allow, deny or escalate, got {on_unsure!r}"
            )
        self.model = model
        self.rules = tuple(items)
        self.scopes = tuple(scopes)
        self.on_unsure = on_unsure
        self.max_tokens = max_tokens
        self.approval = approval

    def prompt(self, call: GovernedCall, scope_name: str) -> list[Message]:
        rules = "\n".join(f"{i}. {r}" for i, r in enumerate(self.rules, 1))
        action = json.dumps(
            {"tool": call.name, "scope": scope_name, "arguments": dict(call.args)}, default=str
        )
        return [
            Message.system(SYSTEM),
            Message.user(f"Rules:\n{rules}\n\nProposed action:\n{action}"),
        ]

    async def verdict(self, call: GovernedCall, scope_name: str) -> tuple[str, str]:
        """``(action, reason)`` the model gives for ``call``."""
        try:
            said = await self.model.chat(
                self.prompt(call, scope_name),
                max_tokens=self.max_tokens,
                temperature=0.0,
                journal=False,
            )
        except ModelError as exc:
            return self.on_unsure, f"the guard model failed ({type(exc).__name__}: {exc})"
        m = _ANSWER.match(said.text or "")
        if m is None:
            return (
                self.on_unsure,
                f"the guard model's answer could not be read: {said.text[:200]!r}",
            )
        return m.group(1).lower(), m.group(2).strip() or "no reason given"

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        scope_name = getattr(getattr(call.contract, "scope", None), "value", None)
        if call.kind != "tool" or scope_name not in self.scopes:
            return
        action, reason = await self.verdict(call, str(scope_name))
        data = {
            "tool": call.name,
            "key": call.key,
            "args": dict(call.args),
            "action": action,
            "reason": reason,
        }
        await scope.audit("guard_model_decision", data)
        scope.emit("guard_model_decision", {k: v for k, v in data.items() if k != "args"})
        if action == "deny":
            raise PolicyViolationError(
                f"the guard model refused {call.name!r}: {reason}", tool=call.name
            )
        if action == "escalate":
            if await granted(scope, call) is not None:
                return
            rule = self.approval or ApprovalRule()
            rule = replace(rule, extra={**rule.extra, "policy_rule": "guard_model"})
            await request_approval(scope, call, reason=f"guard model: {reason}", rule=rule)

    def __repr__(self) -> str:
        return f"GuardModel({self.model!r}, rules={len(self.rules)})"
