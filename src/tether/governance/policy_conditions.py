"""Conditions of policy rules: JSON paths into a call's arguments or a run's metadata, and the
operators a value is tested with.

A path is ``$.a.b[0]`` (or ``a.b[0]`` without the ``$.``); ``[*]`` walks every item of a list,
and the condition holds when any value it reaches satisfies it. A condition is a literal
(equals) or a mapping of operators, all of which must hold:
``equals``, ``not_equals``, ``in``, ``not_in``, ``<``, ``<=``, ``>``, ``>=``, ``regex``
(``re.search``), ``exists`` (true: the path reaches a value; false: it reaches none).

A comparison (``<``, ``<=``, ``>``, ``>=``) of a value that is not a finite number (NaN,
infinity, a string, a bool, a list) cannot be decided: it is *unknown*, and the rule asking
decides what unknown means (``Condition.holds(values, unknown=...)``): a deny or escalate rule
takes it as a match, an allow rule as none, so such a value never slips past a rule that
restricts. None (an optional argument left out) is no value: it compares false.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tether.core.errors import ConfigurationError

OPERATORS = ("equals", "not_equals", "in", "not_in", "<", "<=", ">", ">=", "regex", "exists")
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+|\*)\]")


def parse_path(path: str, where: str) -> tuple[str | int, ...]:
    """``"$.items[0].id"`` → ``("items", 0, "id")``; ``"*"`` for ``[*]``."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigurationError(f"{where}: a path must be a non-empty string, got {path!r}")
    body = path.strip()
    body = body[1:] if body.startswith("$") else body
    steps: list[str | int] = []
    pos = 0
    while pos < len(body):
        m = _STEP.match(body, pos)
        if m is None:
            raise ConfigurationError(
                f"{where}: cannot read the path {path!r} at {body[pos:]!r}; write it like "
                "'$.items[0].id' or 'items[*].id'"
            )
        name, index = m.group(1), m.group(2)
        steps.append(name if name is not None else ("*" if index == "*" else int(index)))
        pos = m.end()
    return tuple(steps)


def walk(value: Any, steps: tuple[str | int, ...]) -> Iterator[Any]:
    """Every value ``steps`` reach in ``value``."""
    if not steps:
        yield value
        return
    head, rest = steps[0], steps[1:]
    if head == "*":
        if isinstance(value, list | tuple):
            for item in value:
                yield from walk(item, rest)
    elif isinstance(head, int):
        if isinstance(value, list | tuple) and -len(value) <= head < len(value):
            yield from walk(value[head], rest)
    elif isinstance(value, Mapping) and head in value:
        yield from walk(value[head], rest)


Test = Callable[[Any], bool | None]
"""One operator's test of a value: True, False, or None (unknown: see the module)."""


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    """A number a comparison can decide on (a ``Decimal`` argument included)."""
    if isinstance(v, Decimal):
        return v.is_finite()
    return _num(v) and (isinstance(v, int) or math.isfinite(v))


def _equals(ref: Any) -> Callable[[Any], bool]:
    return lambda v: bool(v == ref)


def _negate(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: not test(v)


def _member(options: list[Any]) -> Callable[[Any], bool]:
    return lambda v: v in options


def _search(rx: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and rx.search(v) is not None


def _compare(op: str, ref: Any) -> Test:
    """``v op ref``; false for None (no value), unknown (None) for anything else that is not a
    finite number."""
    cmp = _COMPARISONS[op]
    return lambda v: bool(cmp(v, ref)) if _finite(v) else (False if v is None else None)


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled test of one value (see the module for the operators)."""

    spec: Any
    tests: tuple[Test, ...]
    exists: bool | None

    def holds(self, values: list[Any], unknown: bool = False) -> bool:
        """Whether some value passes every test; a test that cannot decide (a comparison of
        NaN, of a string) counts as ``unknown``."""
        if self.exists is not None and bool(values) is not self.exists:
            return False
        if not self.tests:
            return True
        return any(self._passes(v, unknown) for v in values)

    def _passes(self, value: Any, unknown: bool) -> bool:
        undecided = False
        for test in self.tests:
            verdict = test(value)
            if verdict is False:
                return False
            undecided = undecided or verdict is None
        return unknown if undecided else True


def compile_condition(spec: Any, where: str) -> Condition:
    """``spec`` (a literal, or a mapping of operators) as a Condition; a bad operator or
    operand raises ConfigurationError naming ``where``."""
    if not isinstance(spec, Mapping):
        return Condition(spec, (_equals(spec),), None)
    if not spec:
        raise ConfigurationError(f"{where}: an empty condition; use one of {list(OPERATORS)}")
    tests: list[Test] = []
    exists: bool | None = None
    for op, ref in spec.items():
        if op not in OPERATORS:
            raise ConfigurationError(
                f"{where}: unknown operator {op!r}; use one of {list(OPERATORS)}"
            )
        if op == "exists":
            if not isinstance(ref, bool):
                raise ConfigurationError(f"{where}: 'exists' takes true or false, got {ref!r}")
            exists = ref
        elif op == "equals":
            tests.append(_equals(ref))
        elif op == "not_equals":
            tests.append(_negate(_equals(ref)))
        elif op in ("in", "not_in"):
            if not isinstance(ref, list | tuple | set | frozenset):
                raise ConfigurationError(f"{where}: {op!r} takes a list, got {ref!r}")
            member = _member(list(ref))
            tests.append(member if op == "in" else _negate(member))
        elif op == "regex":
            try:
                rx = re.compile(ref) if isinstance(ref, str) else None
            except re.error as exc:
                raise ConfigurationError(f"{where}: bad regex {ref!r}: {exc}") from None
            if rx is None:
                raise ConfigurationError(f"{where}: 'regex' takes a string, got {ref!r}")
            tests.append(_search(rx))
        else:
            if not _finite(ref):
                raise ConfigurationError(f"{where}: {op!r} takes a finite number, got {ref!r}")
            tests.append(_compare(op, ref))
    return Condition(dict(spec), tuple(tests), exists)


@dataclass(frozen=True, slots=True)
class PathCondition:
    path: str
    steps: tuple[str | int, ...]
    condition: Condition

    def holds(self, root: Any, unknown: bool = False) -> bool:
        return self.condition.holds(list(walk(root, self.steps)), unknown)


def compile_paths(spec: Any, where: str) -> tuple[PathCondition, ...]:
    """``{path: condition}`` (``args``, ``metadata``, ``projected``) compiled."""
    if spec is None:
        return ()
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            f"{where}: takes a mapping of JSON path to condition, got {type(spec).__name__}"
        )
    return tuple(
        PathCondition(p, parse_path(p, f"{where} path {p!r}"), compile_condition(c, f"{where}.{p}"))
        for p, c in spec.items()
    )
