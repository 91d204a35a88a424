"""Model-call spans per the OpenTelemetry GenAI semantic conventions (``semconv``).

Span ``chat {gen_ai.request.model}``, kind CLIENT, with ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.*``, ``gen_ai.response.*`` (finish reasons, time to
first chunk when streamed) and ``gen_ai.usage.*``; tether adds ``tether.gen_ai.cost_usd``,
``tether.gen_ai.ttft_s`` and ``tether.gen_ai.tpot_s`` and the run it belongs to
(``tether.run_id``, ``tether.node``). With content capture on (``tracing.capture_content``)
``gen_ai.input.messages`` and ``gen_ai.output.messages`` hold the prompt as sent (after the PII
guard of a governed run) and the answer as received. Every value is bounded
(``span_values.attribute_value``: a long one is cut, marked with its full size). Failures set
``error.type`` and an ERROR status. Nothing is made while tracing is off (``tracing.tracer``
is None).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tether.observability import semconv as sc
from tether.observability.span_values import attribute_value, bounded, text_value
from tether.observability.tracing import LLM_SCOPE, capture_content, tracer

GENAI_TRACER_NAME = LLM_SCOPE


class ModelSpan:
    """Handed to the caller inside :func:`model_span` to record the response."""

    __slots__ = ("_span", "capture")

    def __init__(self, span: Any, capture: bool = False) -> None:
        self._span = span
        self.capture = capture
        """Whether prompts and answers go into the span (``record_input``/``record_output``)."""

    @property
    def recording(self) -> bool:
        return self._span is not None

    def set(self, attributes: Mapping[str, Any]) -> None:
        if self._span is None:
            return
        for key, value in bounded(attributes).items():
            self._span.set_attribute(key, value)

    def record_input(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """The prompt as sent: ``[{"role": ..., "parts": [...]}]`` (GenAI message format)."""
        if self._span is not None and self.capture:
            self._span.set_attribute(sc.INPUT_MESSAGES, text_value(list(messages)))

    def record_output(self, messages: Sequence[Mapping[str, Any]]) -> None:
        if self._span is not None and self.capture:
            self._span.set_attribute(sc.OUTPUT_MESSAGES, text_value(list(messages)))


def message_parts(
    role: str, text: str, tool_calls: Sequence[tuple[str, str, Any]] = ()
) -> dict[str, Any]:
    """One message in the GenAI conventions' format: text and tool-call parts."""
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"type": "text", "content": text})
    for call_id, name, arguments in tool_calls:
        parts.append({"type": "tool_call", "id": call_id, "name": name, "arguments": arguments})
    return {"role": role, "parts": parts}


@contextmanager
def model_span(
    *,
    provider: str,
    model: str,
    request: Mapping[str, Any],
    run: Mapping[str, Any] | None = None,
) -> Iterator[ModelSpan]:
    """Open a GenAI ``chat`` span around one live model call."""
    t = tracer(LLM_SCOPE)
    if t is None:
        yield ModelSpan(None)
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    attributes: dict[str, Any] = {
        sc.OPERATION_NAME: sc.OP_CHAT,
        sc.PROVIDER_NAME: provider,
        sc.REQUEST_MODEL: model,
    }
    for key, value in request.items():
        if value is not None:
            attributes[f"gen_ai.request.{key}"] = value
    for key, value in (run or {}).items():
        if value is not None:
            attributes[f"tether.{key}"] = value
    with t.start_as_current_span(
        sc.span_name(sc.OP_CHAT, model),
        kind=SpanKind.CLIENT,
        attributes=bounded(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield ModelSpan(span, capture_content())
        except BaseException as exc:
            span.set_attribute(sc.ERROR_TYPE, attribute_value(type(exc).__qualname__))
            span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
            raise
