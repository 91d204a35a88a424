"""How many positional arguments a node function or route takes: ``(state)`` or ``(state, ctx)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def count_positional(fn: Callable[..., Any]) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    n = 0
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if n >= 1 and p.default is not p.empty and p.name != "ctx":
                break  # an optional extra (``lambda s, i=i: ...``) keeps its default, never ctx
            n += 1
        elif p.kind is p.VAR_POSITIONAL:
            return max(n, 2)
    return n
