"""Span exporters by name (``otlp``, ``otlp-http``, ``otlp-grpc``, ``console``): built only
when tracing is configured, so the SDK and the exporters are imported only then."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tether.core.errors import ConfigurationError

EXPORTERS = ("otlp", "otlp-http", "otlp-grpc", "console", "none")
"""What ``configure_tracing(exporter=...)`` and ``TETHER_TRACE_EXPORTER`` accept."""

INSTALL_HINT = "install the OpenTelemetry extra: pip install 'tether[otel]'"


def check_exporter_name(name: str, where: str) -> str:
    """``name`` normalised (``otlp_http`` → ``otlp-http``), or ConfigurationError naming the
    accepted values."""
    clean = name.strip().lower().replace("_", "-")
    if clean == "otlp-proto-http" or clean == "http/protobuf":
        clean = "otlp-http"
    if clean not in EXPORTERS:
        raise ConfigurationError(
            f"{where}: unknown trace exporter {name!r}; use one of {', '.join(EXPORTERS)}"
        )
    return clean


def otlp_protocol() -> str:
    """``otlp-http`` or ``otlp-grpc`` as the standard ``OTEL_EXPORTER_OTLP_*PROTOCOL`` say
    (default: HTTP/protobuf, the OTLP default)."""
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", ""
    )
    return "otlp-grpc" if raw.strip().lower() == "grpc" else "otlp-http"


def http_traces_url(endpoint: str) -> str:
    """An OTLP/HTTP base URL (``http://host:4318``) as the traces URL (``.../v1/traces``)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def build_exporter(
    name: str, endpoint: str | None = None, headers: Mapping[str, str] | None = None
) -> Any:
    """The SDK exporter ``name`` stands for. With no ``endpoint`` an OTLP exporter reads the
    standard ``OTEL_EXPORTER_OTLP_*`` variables (default ``localhost``: nothing leaves the
    machine unless they say so)."""
    if name == "otlp":
        name = otlp_protocol()
    try:
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            return ConsoleSpanExporter()
        if name == "otlp-http":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter as HttpExporter,
            )

            url = http_traces_url(endpoint) if endpoint else None
            return HttpExporter(endpoint=url, headers=dict(headers) if headers else None)
        if name == "otlp-grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

            insecure = endpoint.startswith("http://") if endpoint else None
            return GrpcExporter(
                endpoint=endpoint,
                headers=dict(headers) if headers else None,
                insecure=insecure,
            )
    except ImportError as exc:
        raise ConfigurationError(
            f"trace exporter {name!r} needs {exc.name or 'the OpenTelemetry SDK'}: {INSTALL_HINT}"
        ) from None
    raise ConfigurationError(f"trace exporter {name!r} cannot be built")  # pragma: no cover
