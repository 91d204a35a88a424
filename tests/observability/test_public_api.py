"""The public surface of ``tether.observability``: pinned and importable."""

from __future__ import annotations

import tether.observability as observability

EXPECTED = sorted(
    [
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
)


def test_public_names_are_pinned() -> None:
    assert sorted(observability.__all__) == EXPECTED


def test_every_public_name_is_importable() -> None:
    for name in observability.__all__:
        assert getattr(observability, name) is not None
