"""``ApprovalRule``: who may approve a call, how many keys it takes, and what its deadline does.

The policy engine passes one as ``rule`` to ``request_approval``. The default asks one approval
from any registered approver, with no deadline. ``required=2`` is dual-key: two distinct
approvers (distinct ids and distinct keys), and with ``distinct_roles=True`` of different
roles. ``deadline`` seconds after the request, ``on_deadline`` either rejects it
(``"reject"``) or hands it to other approvers (``Escalate(roles=("manager",))``), which may
carry a deadline of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.core.errors import ConfigurationError
from tether.core.finite import is_number

REJECT: Literal["reject"] = "reject"


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{what} must be a list of non-empty names, got {value!r}")
    return tuple(value)


def _deadline(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if not is_number(value) or not value > 0:
        raise ConfigurationError(
            f"{what} must be a finite number of seconds > 0 (None: no deadline), got {value!r}"
        )
    return float(value)


def _check_reachable(roles: tuple[str, ...], ids: tuple[str, ...], n: int, what: str) -> None:
    """Refuse a rule only named approvers could meet and too few are named: its requests
    could never be approved (they would wait for a deadline, or for ever)."""
    if not roles and ids and len(set(ids)) < n:
        raise ConfigurationError(
            f"{what} needs {n} distinct approvers but names only {sorted(set(ids))}; name "
            "more approvers, add roles=(...), or lower required"
        )


def _action(value: Any, what: str) -> Literal["reject"] | Escalate:
    if isinstance(value, Escalate):
        return value
    if value == REJECT:
        return "reject"
    if isinstance(value, Mapping) and "escalate" in value:
        return Escalate.from_dict(value["escalate"])
    raise ConfigurationError(f"{what} must be 'reject' or Escalate(roles=(...)), got {value!r}")


@dataclass(frozen=True, slots=True)
class Escalate:
    """At the deadline, the request goes to these approvers instead (the approvals already
    given count only if their approver is among the new ones)."""

    roles: tuple[str, ...] = ("manager",)
    approvers: tuple[str, ...] = ()
    required: int = 1
    deadline: float | None = None
    """Seconds the new approvers get; None: no further deadline."""
    on_deadline: Literal["reject"] | Escalate = REJECT

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", _names(self.roles, "Escalate(roles=...)"))
        object.__setattr__(self, "approvers", _names(self.approvers, "Escalate(approvers=...)"))
        if not self.roles and not self.approvers:
            raise ConfigurationError("Escalate needs roles=(...) or approvers=(...) to go to")
        _check_required(self.required, "Escalate(required=...)")
        _check_reachable(self.roles, self.approvers, self.required, "Escalate")
        object.__setattr__(self, "deadline", _deadline(self.deadline, "Escalate(deadline=...)"))
        object.__setattr__(self, "on_deadline", _action(self.on_deadline, "on_deadline"))

    def to_dict(self) -> dict[str, Any]:
        then = self.on_deadline
        return {
            "roles": list(self.roles),
            "approvers": list(self.approvers),
            "required": self.required,
            "deadline": self.deadline,
            "on_deadline": then if isinstance(then, str) else {"escalate": then.to_dict()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Escalate:
        return cls(
            roles=d.get("roles", ()),
            approvers=d.get("approvers", ()),
            required=d.get("required", 1),
            deadline=d.get("deadline"),
            on_deadline=d.get("on_deadline", REJECT),
        )


def _check_required(n: Any, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(f"{what} must be a whole number >= 1 (2: dual-key), got {n!r}")


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """Who may approve (``roles`` or ``approvers`` ids; neither: any registered approver),
    how many distinct approvers must (``required``), and the deadline."""

    roles: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    required: int = 1
    distinct_roles: bool = False
    """Dual-key across roles: the ``required`` approvers must hold different roles."""
    deadline: float | None = None
    on_deadline: Literal["reject"] | Escalate = REJECT
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Free-form notes kept with the request (e.g. the policy rule's name)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", _names(self.roles, "ApprovalRule(roles=...)"))
        object.__setattr__(self, "approvers", _names(self.approvers, "ApprovalRule(approvers=...)"))
        _check_required(self.required, "ApprovalRule(required=...)")
        _check_reachable(self.roles, self.approvers, self.required, "ApprovalRule")
        object.__setattr__(self, "deadline", _deadline(self.deadline, "ApprovalRule(deadline=)"))
        object.__setattr__(self, "on_deadline", _action(self.on_deadline, "on_deadline"))
        if self.distinct_roles and self.roles and len(self.roles) < self.required:
            raise ConfigurationError(
                f"ApprovalRule(distinct_roles=True, required={self.required}) needs at least "
                f"{self.required} roles to choose from, got {list(self.roles)}"
            )

    def to_dict(self) -> dict[str, Any]:
        then = self.on_deadline
        return {
            "roles": list(self.roles),
            "approvers": list(self.approvers),
            "required": self.required,
            "distinct_roles": self.distinct_roles,
            "deadline": self.deadline,
            "on_deadline": then if isinstance(then, str) else {"escalate": then.to_dict()},
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ApprovalRule:
        known = {"roles", "approvers", "required", "distinct_roles", "deadline", "on_deadline"}
        unknown = sorted(set(d) - known - {"extra"})
        if unknown:
            raise ConfigurationError(
                f"unknown approval rule field(s) {unknown}; use {sorted(known)}"
            )
        return cls(**{k: d[k] for k in known if k in d}, extra=dict(d.get("extra") or {}))

    @classmethod
    def coerce(cls, rule: Any) -> ApprovalRule:
        """``rule`` as given to ``request_approval``: None (the default), an ApprovalRule, or
        its dict form (from a YAML policy)."""
        if rule is None:
            return cls()
        if isinstance(rule, ApprovalRule):
            return rule
        if isinstance(rule, Mapping):
            return cls.from_dict(rule)
        raise ConfigurationError(
            f"an approval rule must be an ApprovalRule or a mapping, got {type(rule).__name__}"
        )

    def escalated(self) -> ApprovalRule | None:
        """The rule after its deadline (None: the deadline rejects)."""
        to = self.on_deadline
        if isinstance(to, str):
            return None
        return ApprovalRule(
            roles=to.roles,
            approvers=to.approvers,
            required=to.required,
            deadline=to.deadline,
            on_deadline=to.on_deadline,
            extra=self.extra,
        )
