from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether.observability import configure_tracing, shutdown_tracing


@pytest.fixture
def traced() -> Iterator[InMemorySpanExporter]:
    """tether traces into an in-memory exporter for the test (content capture off)."""
    exporter = InMemorySpanExporter()
    configure_tracing(exporter, capture_content=False)
    yield exporter
    shutdown_tracing()
