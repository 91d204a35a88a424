"""State reducers: how a field combines the value a node writes with the value it had.

A reducer is ``(current, update) -> new``; it must not mutate ``current``. Built-in reducers have
names, so a stored run can rebuild its state at any step without importing user code.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ReducerFn = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class Reducer:
    name: str
    fn: ReducerFn
    empty: Callable[[], Any] | None = None

    def __call__(self, current: Any, update: Any) -> Any:
        return self.fn(current, update)


def _append(current: Any, update: Any) -> list[Any]:
    base = list(current) if current is not None else []
    if isinstance(update, list | tuple):
        base.extend(update)
    else:
        base.append(update)
    return base


def _merge(current: Any, update: Any) -> dict[Any, Any]:
    if not isinstance(update, dict):
        raise TypeError(f"merge reducer expects a dict update, got {type(update).__name__}")
    out = dict(current) if current is not None else {}
    out.update(update)
    return out


def _add(current: Any, update: Any) -> Any:
    return update if current is None else current + update


def _max(current: Any, update: Any) -> Any:
    return update if current is None else max(current, update)


def _min(current: Any, update: Any) -> Any:
    return update if current is None else min(current, update)


def _union(current: Any, update: Any) -> list[Any]:
    base = list(current) if current is not None else []
    seen = {_hashable(v) for v in base}
    items = update if isinstance(update, list | tuple | set | frozenset) else [update]
    for item in items:
        h = _hashable(item)
        if h not in seen:
            seen.add(h)
            base.append(item)
    return base


def _hashable(v: Any) -> Any:
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


def _replace(current: Any, update: Any) -> Any:
    return update


replace = Reducer("replace", _replace)
append = Reducer("append", _append, list)
merge = Reducer("merge", _merge, dict)
add = Reducer("add", _add)
maximum = Reducer("max", _max)
minimum = Reducer("min", _min)
union = Reducer("union", _union, list)

BUILTIN: dict[str, Reducer] = {
    r.name: r for r in (replace, append, merge, add, maximum, minimum, union)
}


_ALIASES: dict[Any, Reducer] = {max: maximum, min: minimum, operator.add: add}
"""Callables that fail as plain reducers (``max(None, 1)`` raises on a field's first write, and
a stored run could not be rebuilt without importing them): they mean their built-in."""


def as_reducer(obj: Reducer | ReducerFn | str) -> Reducer:
    """Accept a Reducer, a built-in name, or a plain ``(current, update) -> new`` callable.

    The builtins ``max``/``min`` and ``operator.add`` mean ``maximum``/``minimum``/``add``. A
    callable that cannot take two positional arguments is refused (TypeError).
    """
    if isinstance(obj, Reducer):
        return obj
    if isinstance(obj, str):
        try:
            return BUILTIN[obj]
        except KeyError:
            raise ValueError(f"unknown reducer {obj!r}; built-ins are {sorted(BUILTIN)}") from None
    if callable(obj):
        try:
            alias = _ALIASES.get(obj)
        except TypeError:  # an unhashable callable is never an alias
            alias = None
        if alias is not None:
            return alias
        _check_arity(obj)
        name = getattr(obj, "__qualname__", repr(obj))
        return Reducer(f"custom:{getattr(obj, '__module__', '?')}:{name}", obj)
    raise TypeError(f"not a reducer: {obj!r}")


def _check_arity(fn: ReducerFn) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: it is called as (current, update) and may fail
    try:
        sig.bind(None, None)
    except TypeError:
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"reducer {name}{sig} cannot be called as (current, update) -> new; a reducer takes "
            "the field's current value (None before the first write) and the update. Use a "
            "built-in (tether.append, merge, add, maximum, minimum, union) or a two-argument "
            "function"
        ) from None
