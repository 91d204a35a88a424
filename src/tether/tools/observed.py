"""What a tool call leaves behind for observers: an ``execute_tool`` span (when tracing, see
``tether.observability.tool_span``) and, inside a run, a ``tool_call`` event on the run's
stream (tool, scope, ok, attempts, retries, latency, error type) for ``tether trace`` and the
KPIs. A journaled replay makes no event (the journal's ``effect_replayed`` says it); tool
calls are counted from the effect journal (``tether.store.run_usage``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tether.core.clock import Clock
from tether.core.governor import governor_of
from tether.observability.tool_span import ToolSpan
from tether.tools.registry import ToolRegistry
from tether.tools.results import ToolResult

TOOL_CALL_EVENT = "tool_call"


def tool_call_event(result: ToolResult, scope: str | None, latency: float) -> dict[str, Any]:
    """The ``tool_call`` event's data (no arguments, no result: those stay in the journal)."""
    return {
        "tool": result.tool,
        "scope": scope,
        "ok": result.ok,
        "attempts": result.attempts,
        "retries": max(result.attempts - 1, 0),
        "latency": latency,
        "error": type(result.error).__name__ if result.error is not None else None,
    }


async def observed_call(
    registry: ToolRegistry,
    clock: Clock,
    name: str,
    args: Mapping[str, Any] | None,
    ctx: Any,
    span: ToolSpan | None,
    call: Callable[[], Awaitable[ToolResult]],
) -> ToolResult:
    """Run ``call`` (the executor's call of tool ``name``) inside ``span``; report it."""
    if span is not None:
        span.arguments(args if isinstance(args, Mapping) else None)
    began = clock.now()
    try:
        result = await call()
    except BaseException as exc:  # a trip (EscalationSignal), a cancellation
        if span is not None:
            span.fail(exc)
        raise
    latency = clock.now() - began
    scope = registry.get(name).scope.value if name in registry else None
    if span is not None:
        span.end(
            ok=result.ok,
            attempts=result.attempts,
            call_id=result.key,
            scope=scope,
            error=result.error,
            result=result.value,
            record_result=governor_of(ctx) is None,
        )
    replayed = result.ok and result.attempts == 0
    emit = getattr(ctx, "emit", None) if ctx is not None else None
    if emit is not None and not replayed:
        emit(TOOL_CALL_EVENT, tool_call_event(result, scope, latency))
    return result
