"""One policy rule: what calls it matches, and what it decides (allow / deny / escalate).

Every condition a rule sets must hold for it to match; a condition left out matches anything:

- ``tool``: a glob or a list of globs over the tool's name (``"refund*"``): a rule that
  restricts (deny, escalate) matches the name whatever its case, one that allows needs it
  exactly; a glob holding what no tool name holds (a space) is refused;
- ``kind``: ``"tool"`` (default) or ``"model"`` (then ``tool`` globs the ``provider:model``);
- ``scope``: ``read`` / ``write`` / ``destructive`` or a list of them (the ``ToolContract``'s);
- ``args``: ``{json path: condition}`` over the validated arguments (``policy_conditions``);
- ``projected``: ``{dimension: condition}`` over what the call may cost (``cost``, tokens);
- ``confidence``: a condition over the model's confidence in the action (``policy_facts``);
  a rule with one never matches a call whose confidence nobody gave;
- ``tenant``: a glob or list of globs over the run's tenant (a run without one never matches);
- ``metadata``: ``{json path: condition}`` over the run's metadata;
- ``untrusted``: true: the arguments derive from untrusted content of the turn (the injection
  guard's rule); false: they do not.

An escalating rule may say who approves (``approval``: an ``ApprovalRule`` or its mapping:
``roles``, ``approvers``, ``required``, ``deadline``, ``on_deadline``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from tether.core.errors import ConfigurationError
from tether.governance.approvals_rule import ApprovalRule
from tether.governance.policy_conditions import (
    Condition,
    PathCondition,
    compile_condition,
    compile_paths,
)

Action = Literal["allow", "deny", "escalate"]
ACTIONS: tuple[str, ...] = ("allow", "deny", "escalate")
SCOPES = ("read", "write", "destructive")
FIELDS = (
    "name",
    "action",
    "priority",
    "reason",
    "tool",
    "kind",
    "scope",
    "args",
    "projected",
    "confidence",
    "tenant",
    "metadata",
    "untrusted",
    "approval",
)


@dataclass(slots=True)
class Facts:
    """What the rules see of one call."""

    kind: str
    tool: str
    scope: str | None
    args: Mapping[str, Any]
    projected: Mapping[str, float]
    confidence: float | None
    tenant: str | None
    metadata: Mapping[str, Any]
    untrusted: bool | None = None
    """None until the guard was asked (only when a rule needs it)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's verdict on one call."""

    action: Action
    rule: str
    """The rule that decided (``default:read``, ``injection_guard``, ``otherwise``...)."""
    reason: str
    evidence: tuple[str, ...] = ()
    """What the injection guard saw: each argument that derives from untrusted content."""
    approval: ApprovalRule | None = None
    """Who approves an escalation (None: the policy set's default)."""


def _tool_globs(globs: tuple[str, ...] | None, where: str) -> tuple[str, ...] | None:
    """``globs`` of a tool rule, checked: a glob holding a space (or anything else no tool
    name holds outside a ``[...]`` set) could never match, and a rule that matches nothing is
    a rule that silently does nothing."""
    for g in globs or ():
        plain = g.replace("_", "a").replace("-", "a").replace(".", "a")
        bad = sorted({c for c in plain if not (c.isalnum() or c in "*?[]!")})
        if bad:
            fixed = "".join(g.split())
            raise ConfigurationError(
                f"{where}: {g!r} holds {bad!r}, which no tool name does (tool names use "
                f"letters, digits, '_', '-' or '.'; globs add * ? [...]), so the rule could "
                f"never match; did you mean {fixed!r}?"
            )
    return globs


def _globs(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list | tuple)
        or not items
        or not all(isinstance(g, str) for g in items)
    ):
        raise ConfigurationError(f"{where}: takes a glob or a list of globs, got {value!r}")
    return tuple(items)


@dataclass(frozen=True)
class Rule:
    """A declarative rule (see the module for its conditions). Higher ``priority`` is asked
    first; equal priorities in the order they were declared."""

    name: str
    action: Action
    tool: str | Sequence[str] | None = None
    scope: str | Sequence[str] | None = None
    args: Mapping[str, Any] | None = None
    projected: Mapping[str, Any] | None = None
    confidence: Any = None
    tenant: str | Sequence[str] | None = None
    metadata: Mapping[str, Any] | None = None
    untrusted: bool | None = None
    kind: str = "tool"
    priority: int = 0
    reason: str = ""
    approval: ApprovalRule | Mapping[str, Any] | None = None
    _approval: ApprovalRule | None = field(init=False, repr=False, compare=False)
    _tools: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    _folded: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    _fold: bool = field(init=False, repr=False, compare=False)
    _scopes: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    _tenants: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    _args: tuple[PathCondition, ...] = field(init=False, repr=False, compare=False)
    _projected: tuple[PathCondition, ...] = field(init=False, repr=False, compare=False)
    _metadata: tuple[PathCondition, ...] = field(init=False, repr=False, compare=False)
    _confidence: Condition | None = field(init=False, repr=False, compare=False)
    _paths: bool = field(init=False, repr=False, compare=False)
    """Whether any ``args`` / ``projected`` / ``metadata`` condition is set."""
    _decision: Decision = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(
                f"policy rule: 'name' must be a non-empty string, got {self.name!r}"
            )
        where = f"policy rule {self.name!r}"
        if self.action not in ACTIONS:
            raise ConfigurationError(
                f"{where}: 'action' must be one of {list(ACTIONS)}, got {self.action!r}"
            )
        if self.kind not in ("tool", "model"):
            raise ConfigurationError(
                f"{where}: 'kind' must be 'tool' or 'model', got {self.kind!r}"
            )
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise ConfigurationError(
                f"{where}: 'priority' must be an integer, got {self.priority!r}"
            )
        if not isinstance(self.reason, str):
            raise ConfigurationError(f"{where}: 'reason' must be a string, got {self.reason!r}")
        if self.untrusted is not None and not isinstance(self.untrusted, bool):
            raise ConfigurationError(
                f"{where}: 'untrusted' must be true or false, got {self.untrusted!r}"
            )
        scopes = _globs(self.scope, f"{where} field 'scope'")
        for s in scopes or ():
            if s not in SCOPES:
                raise ConfigurationError(
                    f"{where} field 'scope': unknown scope {s!r}; use {list(SCOPES)}"
                )
        put = object.__setattr__
        try:
            put(
                self,
                "_approval",
                None if self.approval is None else ApprovalRule.coerce(self.approval),
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where} field 'approval': {exc}") from None
        tools = _globs(self.tool, f"{where} field 'tool'")
        if self.kind == "tool":
            tools = _tool_globs(tools, f"{where} field 'tool'")
        # a rule that restricts matches a tool's name whatever its case ("deleterepo" denies
        # the tool "DeleteRepo"); one that allows needs the exact name
        fold = self.action != "allow"
        put(self, "_tools", tools)
        put(self, "_fold", fold)
        put(self, "_folded", None if tools is None else tuple(g.casefold() for g in tools))
        put(self, "_scopes", scopes)
        put(self, "_tenants", _globs(self.tenant, f"{where} field 'tenant'"))
        put(self, "_args", compile_paths(self.args, f"{where} field 'args'"))
        put(self, "_projected", compile_paths(self.projected, f"{where} field 'projected'"))
        put(self, "_metadata", compile_paths(self.metadata, f"{where} field 'metadata'"))
        conf = self.confidence
        put(
            self,
            "_confidence",
            None if conf is None else compile_condition(conf, f"{where} field 'confidence'"),
        )
        put(self, "_paths", bool(self._args or self._projected or self._metadata))
        why = self.reason or f"rule {self.name!r}"  # one verdict per rule, made once
        put(self, "_decision", Decision(self.action, self.name, why, approval=self._approval))

    @classmethod
    def from_dict(cls, spec: Any, where: str = "policy rule") -> Rule:
        """A rule from its YAML/JSON form (the same fields as the constructor)."""
        if not isinstance(spec, Mapping):
            raise ConfigurationError(f"{where}: a rule is a mapping, got {type(spec).__name__}")
        label = f"policy rule {spec.get('name', where)!r}"
        unknown = sorted(str(k) for k in spec if k not in FIELDS)
        if unknown:
            raise ConfigurationError(
                f"{label}: unknown field(s) {unknown}; a rule takes {list(FIELDS)}"
            )
        for required in ("name", "action"):
            if required not in spec:
                raise ConfigurationError(f"{label}: missing the field {required!r}")
        return cls(**{str(k): v for k, v in spec.items()})

    @property
    def needs_provenance(self) -> bool:
        return self.untrusted is not None

    def matches(self, f: Facts) -> bool:
        """Whether every condition holds. A comparison that cannot be decided (NaN, not a
        number) fails closed: a deny or escalate rule matches, an allow rule does not."""
        unknown = self.action != "allow"
        if f.kind != self.kind:
            return False
        if self._tools is not None and not any(fnmatchcase(f.tool, g) for g in self._tools):
            if not self._fold or self._folded is None:
                return False
            name = f.tool.casefold()
            if not any(fnmatchcase(name, g) for g in self._folded):
                return False
        if self._scopes is not None and f.scope not in self._scopes:
            return False
        if self._tenants is not None and (
            f.tenant is None or not any(fnmatchcase(f.tenant, g) for g in self._tenants)
        ):
            return False
        if self._confidence is not None and (
            f.confidence is None or not self._confidence.holds([f.confidence], unknown)
        ):
            return False
        if self.untrusted is not None and bool(f.untrusted) is not self.untrusted:
            return False
        return not self._paths or (
            all(c.holds(f.args, unknown) for c in self._args)
            and all(c.holds(f.projected, unknown) for c in self._projected)
            and all(c.holds(f.metadata, unknown) for c in self._metadata)
        )

    def decision(self) -> Decision:
        return self._decision
