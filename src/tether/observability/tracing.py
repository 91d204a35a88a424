"""Whether tether traces, and where its spans go.

tether traces only when told to, and sends spans only where it was told:

- ``configure_tracing(...)`` (Python) or ``TETHER_TRACE_EXPORTER`` (``otlp``, ``otlp-http``,
  ``otlp-grpc``, ``console``, ``none``; the standard ``OTEL_TRACES_EXPORTER`` when set and
  tether's is not) build a tracer provider of tether's own with that exporter; the OTLP
  exporters read the standard ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers,
  protocol);
- otherwise, an application that installed its own SDK tracer provider globally
  (``trace.set_tracer_provider``) gets tether's spans there;
- otherwise nothing: :func:`tracer` returns None and no span object is ever made. Until then
  only ``opentelemetry-api`` is imported (when installed), never the SDK.

Prompts and outputs go into spans only when content capture is on (``capture_content=True``,
``TETHER_TRACE_CONTENT=1`` or the GenAI instrumentations' standard
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from tether.core.errors import ConfigurationError
from tether.observability.exporters import (
    INSTALL_HINT,
    build_exporter,
    check_exporter_name,
    otlp_protocol,
)
from tether.observability.pinned_ids import PinnableIds, pin_tracer
from tether.observability.semconv import SCHEMA_URL

try:  # optional: tether[otel]
    from opentelemetry import trace as _trace
    from opentelemetry.trace import ProxyTracerProvider
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _trace = None  # type: ignore[assignment]

log = logging.getLogger("tether.observability")

ENV_EXPORTER = "TETHER_TRACE_EXPORTER"
ENV_CONTENT = "TETHER_TRACE_CONTENT"
OTEL_ENV_EXPORTER = "OTEL_TRACES_EXPORTER"
OTEL_ENV_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

GRAPH_SCOPE = "tether.graph"
WORKFLOW_SCOPE = "tether.workflow"
"""The scope of ``invoke_workflow`` spans, whose ids are pinned (``pinned_ids``)."""
TOOLS_SCOPE = "tether.tools"
LLM_SCOPE = "tether.llm"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class TracingSetup:
    """What ``configure_tracing`` set up: the provider tether's spans go to."""

    def __init__(
        self, provider: Any, exporter: str, capture_content: bool, owns_provider: bool
    ) -> None:
        self.provider = provider
        self.exporter = exporter
        """The exporter's name (``otlp-http``...), ``custom`` or ``provider``."""
        self.capture_content = capture_content
        self.owns_provider = owns_provider
        self._tracers: dict[str, Any] = {}

    def tracer(self, scope: str) -> Any:
        got = self._tracers.get(scope)
        if got is None:
            got = self._tracers[scope] = self.provider.get_tracer(scope, schema_url=SCHEMA_URL)
            if scope == WORKFLOW_SCOPE:
                pin_tracer(got)
        return got

    def force_flush(self, timeout_ms: int = 30_000) -> bool:
        flush = getattr(self.provider, "force_flush", None)
        return bool(flush(timeout_ms)) if flush is not None else True

    def shutdown(self) -> None:
        if self.owns_provider:
            self.provider.shutdown()
        else:
            self.force_flush()


class _State:
    setup: TracingSetup | None = None
    off = False
    """``none`` was configured: no spans even with a global provider."""
    env_read = False
    capture_env = False
    global_tracers: dict[tuple[int, str], Any] = {}


_STATE = _State()


def configure_tracing(
    exporter: str | Any = "otlp",
    *,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    provider: Any = None,
    capture_content: bool | None = None,
    service_name: str | None = None,
    batch: bool | None = None,
) -> TracingSetup | None:
    """Turn tracing on (or off with ``"none"``) for this process; returns the setup (None for
    ``"none"``). Replaces an earlier configuration (shutting its provider down).

    ``exporter``: a name (``otlp`` picks HTTP or gRPC from ``OTEL_EXPORTER_OTLP_PROTOCOL``,
    ``otlp-http``, ``otlp-grpc``, ``console``, ``none``) or an SDK ``SpanExporter`` instance
    (an ``InMemorySpanExporter`` in tests). ``endpoint``: the OTLP endpoint (HTTP: the base
    URL, ``/v1/traces`` is added; gRPC: ``http://host:4317``); without it the standard
    ``OTEL_EXPORTER_OTLP_*`` variables apply. ``provider``: an SDK ``TracerProvider`` of the
    application's to use instead of building one (``exporter`` is then ignored).
    ``capture_content``: record prompts, outputs and tool arguments/results (default: the
    environment's ``TETHER_TRACE_CONTENT`` / ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_
    CONTENT``). ``batch``: export in batches in the background (default for OTLP) or each span
    as it ends (default for the console and exporter instances).
    """
    shutdown_tracing()
    _STATE.env_read = True
    capture = _capture_from_env() if capture_content is None else bool(capture_content)
    if provider is not None:
        _STATE.setup = TracingSetup(provider, "provider", capture, owns_provider=False)
        return _STATE.setup
    name = "custom"
    if isinstance(exporter, str):
        name = check_exporter_name(exporter, "configure_tracing(exporter=...)")
        if name == "none":
            _STATE.off = True
            return None
        if name == "otlp":
            name = otlp_protocol()
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    except ImportError:
        raise ConfigurationError(f"tracing needs the OpenTelemetry SDK: {INSTALL_HINT}") from None
    span_exporter: Any = build_exporter(name, endpoint, headers) if name != "custom" else exporter
    attrs: dict[str, Any] = {}
    if service_name:
        attrs["service.name"] = service_name
    elif not os.environ.get("OTEL_SERVICE_NAME"):
        attrs["service.name"] = "tether"
    ids: Any = PinnableIds(RandomIdGenerator())
    new = TracerProvider(resource=Resource.create(attrs), id_generator=ids)
    in_batches = batch if batch is not None else name.startswith("otlp")
    processor = BatchSpanProcessor if in_batches else SimpleSpanProcessor
    new.add_span_processor(processor(span_exporter))
    _STATE.setup = TracingSetup(new, name, capture, owns_provider=True)
    return _STATE.setup


def configure_tracing_from_env() -> TracingSetup | None:
    """``configure_tracing`` as ``TETHER_TRACE_EXPORTER`` (else a set ``OTEL_TRACES_EXPORTER``)
    says; nothing when neither is set. Raises ConfigurationError for a value it does not know."""
    _STATE.env_read = True
    _STATE.capture_env = _capture_from_env()
    if _truthy(os.environ.get("OTEL_SDK_DISABLED")):
        _STATE.off = True
        return None
    where, raw = ENV_EXPORTER, os.environ.get(ENV_EXPORTER, "").strip()
    if not raw:
        where, raw = OTEL_ENV_EXPORTER, os.environ.get(OTEL_ENV_EXPORTER, "").strip()
        raw = raw.split(",")[0].strip()
    if not raw:
        return None
    return configure_tracing(check_exporter_name(raw, where))


def shutdown_tracing() -> None:
    """Flush and drop tether's tracing configuration (an application's global provider is
    flushed, not shut down). Afterwards tracing is as if never configured."""
    setup, _STATE.setup = _STATE.setup, None
    _STATE.off = False
    _STATE.global_tracers.clear()
    if setup is not None:
        setup.shutdown()


def tracing_setup() -> TracingSetup | None:
    return _STATE.setup


def _capture_from_env() -> bool:
    return _truthy(os.environ.get(ENV_CONTENT)) or _truthy(os.environ.get(OTEL_ENV_CONTENT))


def _read_env() -> None:
    try:
        configure_tracing_from_env()
    except ConfigurationError as exc:
        _STATE.off = True
        log.error("tracing is off: %s", exc)


def tracer(scope: str = GRAPH_SCOPE) -> Any:
    """The tracer tether's spans of ``scope`` go to, or None when tracing is not configured
    (then no span is made at all). Cheap: called per run execution, model and tool call."""
    state = _STATE
    setup = state.setup
    if setup is not None:
        return setup.tracer(scope)
    if not state.env_read:
        _read_env()
        if state.setup is not None:
            return state.setup.tracer(scope)
    if state.off or _trace is None:
        return None
    provider = _trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return None
    key = (id(provider), scope)
    got = state.global_tracers.get(key)
    if got is None:
        if len(state.global_tracers) > 16:  # providers replaced again and again (tests)
            state.global_tracers.clear()
        got = state.global_tracers[key] = provider.get_tracer(scope, schema_url=SCHEMA_URL)
        if scope == WORKFLOW_SCOPE:
            pin_tracer(got)
    return got


def capture_content() -> bool:
    """Whether prompts, outputs and tool arguments/results go into spans."""
    setup = _STATE.setup
    if setup is not None:
        return setup.capture_content
    return _STATE.capture_env
