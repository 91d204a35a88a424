"""Tool-call spans per the GenAI conventions: ``execute_tool {gen_ai.tool.name}``.

Attributes: ``gen_ai.operation.name``, ``gen_ai.tool.name``, ``gen_ai.tool.type``
(``function``), ``gen_ai.tool.call.id`` (the call's journal/idempotency key), and tether's
``tether.tool.scope`` (read / write / destructive), ``tether.outcome`` (ok, error, replayed),
``tether.attempts`` and ``tether.tool.retries``. A governance decision taken for the call (a
policy verdict, an approval request, a trip) is a span event of this span. With content capture
on, ``gen_ai.tool.call.arguments`` (as the model asked, before a PII guard restores anything)
and, outside governed runs, ``gen_ai.tool.call.result`` (a governed run's results have not
passed the PII vault, so they stay out). For the same reason a governed run's failed call has
only its error type as the span's status description, never the error's message (an egress
tool's error may quote the real values it got). Every value is bounded
(``span_values.attribute_value``): a 5 MB argument is recorded as its first ``MAX_TEXT``
characters and a marker naming its full size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.observability import semconv as sc
from tether.observability.span_scope import Entered, enter, leave
from tether.observability.span_values import bounded, cut, text_value
from tether.observability.tracing import TOOLS_SCOPE, capture_content, tracer


class ToolSpan:
    __slots__ = ("_entered", "_span", "capture")

    def __init__(self, span: Any, entered: Entered, capture: bool) -> None:
        self._span = span
        self._entered = entered
        self.capture = capture

    def arguments(self, args: Mapping[str, Any] | None) -> None:
        if self.capture and args is not None:
            self._span.set_attribute(sc.TOOL_CALL_ARGUMENTS, text_value(dict(args)))

    def end(
        self,
        *,
        ok: bool,
        attempts: int,
        call_id: str | None,
        scope: str | None,
        error: BaseException | None = None,
        result: Any = None,
        record_result: bool = False,
    ) -> None:
        """Close the span with the call's outcome (``attempts`` 0 and ok: a journaled replay)."""
        span = self._span
        replayed = ok and attempts == 0
        span.set_attribute(sc.OUTCOME, "replayed" if replayed else "ok" if ok else "error")
        span.set_attribute(sc.ATTEMPTS, attempts)
        span.set_attribute(sc.TOOL_RETRIES, max(attempts - 1, 0))
        if replayed:
            span.set_attribute(sc.TOOL_REPLAYED, True)
        for key, value in bounded({sc.TOOL_CALL_ID: call_id, sc.TOOL_SCOPE: scope}).items():
            span.set_attribute(key, value)
        if ok and record_result and self.capture:
            span.set_attribute(sc.TOOL_CALL_RESULT, text_value(result))
        if error is not None:
            from tether.observability.run_trace import mark_failed

            kind = type(error).__qualname__
            # a governed run's tool said it past the PII vault, errors as much as results
            mark_failed(span, cut(kind), str(error) if record_result else cut(kind))
        self._finish()

    def fail(self, exc: BaseException) -> None:
        """The call raised out of the executor (a trip, a cancellation)."""
        from tether.observability.run_trace import mark_failed

        mark_failed(self._span, cut(type(exc).__qualname__), str(exc))
        self._finish()

    def _finish(self) -> None:
        leave(self._entered)
        self._span.end()


def start_tool_span(name: str, ctx: Any) -> ToolSpan | None:
    """Open the span of one tool call made in ``ctx`` (a run's node context, or None), or
    None while tracing is off. It is the current span until it ends."""
    t = tracer(TOOLS_SCOPE)
    if t is None:
        return None
    from opentelemetry.trace import SpanKind

    attrs: dict[str, Any] = {
        sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
        sc.TOOL_NAME: name,
        sc.TOOL_TYPE: "function",
    }
    run_id = getattr(ctx, "run_id", None)
    if run_id is not None:
        attrs[sc.RUN_ID] = str(run_id)
        node = getattr(ctx, "node", None)
        if node is not None:
            attrs[sc.NODE] = str(node)
    span = t.start_span(
        sc.span_name(sc.OP_EXECUTE_TOOL, name), kind=SpanKind.INTERNAL, attributes=bounded(attrs)
    )
    return ToolSpan(span, enter(str(run_id or ""), span), capture_content())
