"""Observability: OpenTelemetry traces following the GenAI semantic conventions.

One trace per run (``invoke_workflow``), a span per step and node (``invoke_agent`` for
agents), ``chat`` per model call and ``execute_tool`` per tool call, governance decisions as
span events; the trace continues across workers and nests child runs (see ``run_trace``).
Nothing is traced, and the SDK is not imported, until tracing is configured
(:func:`configure_tracing`, ``TETHER_TRACE_EXPORTER``) or the application installed an SDK
tracer provider of its own. ``timeline`` rebuilds a run's spans from its stored events
(``tether trace``).
"""

from tether.observability.genai import GENAI_TRACER_NAME, model_span
from tether.observability.semconv import SCHEMA_URL, SEMCONV_VERSION
from tether.observability.trace_ids import TRACE_KEY, RunTraceIds, run_trace_ids
from tether.observability.tracing import (
    TracingSetup,
    capture_content,
    configure_tracing,
    configure_tracing_from_env,
    shutdown_tracing,
    tracing_setup,
)

__all__ = [
    "GENAI_TRACER_NAME",
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "TRACE_KEY",
    "RunTraceIds",
    "TracingSetup",
    "capture_content",
    "configure_tracing",
    "configure_tracing_from_env",
    "model_span",
    "run_trace_ids",
    "shutdown_tracing",
    "tracing_setup",
]
