"""Observability: OpenTelemetry spans following the GenAI semantic conventions.

Everything here is a no-op unless ``opentelemetry-api`` is installed (``tether[otel]``) and the
application configured a tracer provider; tether never configures exporters itself.
"""

from tether.observability.genai import GENAI_TRACER_NAME, model_span

__all__ = ["GENAI_TRACER_NAME", "model_span"]
