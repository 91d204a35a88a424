"""Attributes that planes above the graph add to every ``Runtime`` (``rt.approvals``).

A package that the graph may not import (``tether.governance`` sits above it) registers a
factory under a name; the ``Runtime`` property of that name builds it for that runtime on first
use and keeps it. Registering happens when that package is imported, so ``rt.approvals``
works in any process that imported ``tether.governance`` (as every governed workflow does).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("tether.runtime")

_FACTORIES: dict[str, Callable[[Any], Any]] = {}

CancelHook = Callable[[Any, Any], Awaitable[None]]
"""``hook(runtime, run)``: called with the cancelled run's record once its cancel committed."""
_ON_CANCEL: dict[str, CancelHook] = {}


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


def on_run_cancelled(name: str, hook: CancelHook) -> None:
    """Have ``Runtime.cancel`` call ``hook(runtime, run)`` after a cancel committed (approvals
    void the run's pending requests). One hook per ``name``: registering it again replaces it."""
    _ON_CANCEL[name] = hook


async def run_cancelled(runtime: Any, run: Any) -> None:
    """Call the cancel hooks; one that fails is logged, never undoes the cancel."""
    for name, hook in list(_ON_CANCEL.items()):
        try:
            await hook(runtime, run)
        except Exception:
            log.exception("after cancelling run %s: the %s hook failed", run.run_id, name)
