"""The governance settings the benchmark compares (all tether's own parts, no AgentDojo
knowledge): ``none`` (ungoverned), ``policies`` (tether's default policy rules: read allowed,
write allowed, destructive escalates; no injection guard) and ``guard`` (the same defaults
plus tether's injection guard, trusting the run's input: the user's request)."""

from __future__ import annotations

from typing import Any

from tether.governance import Governance, InjectionGuard, PolicySet


def governance(setting: str) -> Any:
    if setting == "none":
        return None
    if setting == "policies":
        return Governance(policies=PolicySet(defaults=True, guard=False))
    if setting == "guard":
        return Governance(policies=PolicySet(defaults=True, guard=InjectionGuard(trust_input=True)))
    raise SystemExit(f"unknown governance setting {setting!r}; use none, policies or guard")


SETTINGS = ("none", "policies", "guard")
