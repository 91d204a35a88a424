"""The run a piece of code is executing in, seen from planes that cannot import the graph.

The graph's run loop sets :data:`CURRENT_RUN` around every node; the model and tool planes read
it to journal their calls in that run's effect journal without importing ``tether.graph``. What
they may rely on is the :class:`CallJournal` protocol below (``RunContext`` implements it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class CallJournal(Protocol):
    run_id: str
    node: str
    tenant: str | None
    """Whose run it is (None: no tenant); planes act for it (tools, the semantic cache)."""

    def call_key(self, kind: str) -> str: ...

    def emit(self, type: str, data: dict[str, Any] | None = None) -> None: ...

    def emit_live(self, type: str, data: dict[str, Any] | None = None) -> None: ...

    async def journaled(
        self,
        kind: str,
        request: Any,
        call: Callable[[], Awaitable[Any]],
        *,
        key: str | None = None,
        idempotent: bool = True,
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> Any: ...


CURRENT_RUN: ContextVar[CallJournal | None] = ContextVar("tether_run_context", default=None)
"""Set by the graph's executor around each node, to its RunContext; None outside a run."""


def current_journal() -> CallJournal | None:
    """The running node's journal, or None outside a run (a plain contextvar read: it is on
    every model call's path)."""
    return CURRENT_RUN.get()
