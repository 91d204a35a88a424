"""The innermost tether span of the running code (a node, a tool call) and the run it belongs
to: where that run's events emitted there land, and the OpenTelemetry current span for what the
code opens inside (a model call's ``chat`` span, a child run)."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

_ACTIVE: ContextVar[tuple[str, Any] | None] = ContextVar("tether_active_span", default=None)

Entered = tuple[Token[tuple[str, Any] | None], Any]


def enter(run_id: str, span: Any) -> Entered:
    """Make ``span`` (of run ``run_id``) current until ``leave``. Only called with a span, so
    only when tracing is on (``opentelemetry-api`` is installed then)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace

    return _ACTIVE.set((run_id, span)), otel_context.attach(otel_trace.set_span_in_context(span))


def leave(entered: Entered) -> None:
    from opentelemetry import context as otel_context

    token, otel_token = entered
    otel_context.detach(otel_token)
    _ACTIVE.reset(token)


def active(run_id: str) -> Any:
    """The innermost tether span of run ``run_id`` entered in this context, or None (a child
    run started from a parent's node sees the parent's span here: not its own)."""
    got = _ACTIVE.get()
    if got is None or got[0] != run_id:
        return None
    return got[1]
