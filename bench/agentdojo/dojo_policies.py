"""The governance settings the benchmark compares (all tether's own parts, no AgentDojo
knowledge): ``none`` (ungoverned), ``policies`` (tether's default policy rules: read allowed,
write allowed, destructive escalates; no injection guard) and ``guard`` (the same defaults
plus tether's injection guard, trusting the run's input: the user's request) and ``plan`` (the
same governance as ``guard``, with agents that commit their plan before they read: the guard
then also holds them to it, ``tether.governance.plan``), and ``plan-inline`` (the same, with
a hijacked agent that puts what the injection asked it to say on its answer's last line
instead of a line of its own: inside the shape the plan fixed)."""

from __future__ import annotations

from typing import Any

from tether.governance import Governance, InjectionGuard, PolicySet


def governance(setting: str) -> Any:
    if setting == "none":
        return None
    if setting == "policies":
        return Governance(policies=PolicySet(defaults=True, guard=False))
    if setting in ("guard", "plan", "plan-inline"):
        return Governance(policies=PolicySet(defaults=True, guard=InjectionGuard(trust_input=True)))
    raise SystemExit(f"unknown governance setting {setting!r}; use {', '.join(SETTINGS)}")


SETTINGS = ("none", "policies", "guard", "plan", "plan-inline")
COMMITS_PLAN = frozenset({"plan", "plan-inline"})
"""Settings whose agents commit their plan before their first call."""
INLINE = frozenset({"plan-inline"})
"""Settings whose hijacked agent says the attacker's words on its answer's last line."""
