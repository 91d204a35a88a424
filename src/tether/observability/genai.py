"""Model-call spans per the OpenTelemetry GenAI semantic conventions.

Span ``chat {gen_ai.request.model}``, kind CLIENT, with ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.*``, ``gen_ai.response.*`` and ``gen_ai.usage.*``;
tether adds ``tether.gen_ai.cost_usd``, ``tether.gen_ai.ttft_s`` and ``tether.gen_ai.tpot_s`` and
the run it belongs to (``tether.run_id``, ``tether.node``). Failures set ``error.type`` and an
ERROR status.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

GENAI_TRACER_NAME = "tether.llm"

try:  # optional: tether[otel]
    from opentelemetry import trace as _trace
    from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _trace = None  # type: ignore[assignment]

_tracers: dict[int, Any] = {}


def _tracer() -> Any:
    """The tracer of the configured provider, or None while the application has configured
    none (then every span would be a no-op: skip building it)."""
    if _trace is None:
        return None
    provider = _trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return None
    tracer = _tracers.get(id(provider))
    if tracer is None:
        _tracers.clear()
        tracer = _tracers[id(provider)] = provider.get_tracer(GENAI_TRACER_NAME)
    return tracer


class ModelSpan:
    """Handed to the caller inside :func:`model_span` to record the response."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def set(self, attributes: Mapping[str, Any]) -> None:
        if self._span is None:
            return
        for key, value in attributes.items():
            if value is not None:
                self._span.set_attribute(key, value)


@contextmanager
def model_span(
    *,
    provider: str,
    model: str,
    request: Mapping[str, Any],
    run: Mapping[str, Any] | None = None,
) -> Iterator[ModelSpan]:
    """Open a GenAI ``chat`` span around one live model call."""
    tracer = _tracer()
    if tracer is None:
        yield ModelSpan(None)
        return
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    for key, value in request.items():
        if value is not None:
            attributes[f"gen_ai.request.{key}"] = value
    for key, value in (run or {}).items():
        if value is not None:
            attributes[f"tether.{key}"] = value
    with tracer.start_as_current_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield ModelSpan(span)
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
            raise
