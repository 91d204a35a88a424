"""Attributes that planes above the graph add to every ``Runtime`` (``rt.approvals``).

A package that the graph may not import (``tether.governance`` sits above it) registers a
factory under a name; the ``Runtime`` property of that name builds it for that runtime on first
use and keeps it. Registering happens when that package is imported, so ``rt.approvals``
works in any process that imported ``tether.governance`` (as every governed workflow does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_FACTORIES: dict[str, Callable[[Any], Any]] = {}


def register_runtime_extension(name: str, factory: Callable[[Any], Any]) -> None:
    """Make ``extension(runtime, name)`` return ``factory(runtime)`` (built once per runtime)."""
    if not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"a runtime extension needs a public attribute name, got {name!r}")
    _FACTORIES[name] = factory


def extension(runtime: Any, name: str) -> Any:
    """The ``name`` extension of ``runtime``, built on first use and kept on the runtime."""
    built: dict[str, Any] = runtime.__dict__.setdefault("_extensions", {})
    if name not in built:
        factory = _FACTORIES.get(name)
        if factory is None:
            raise AttributeError(
                f"Runtime.{name} is provided by another package that is not imported "
                f"(for approvals: import tether.governance)"
            )
        built[name] = factory(runtime)
    return built[name]
