"""Joining a caller's trace: W3C ``traceparent`` (and ``tracestate``) of an incoming request.

``caller_trace(headers)`` runs a block inside the trace context a caller sent, so a run created
in it (``Runtime.submit``/``start``) records the caller's span as its parent
(``run_trace.trace_metadata_for_new_run``) and every worker that executes it continues that
trace. It extracts with OpenTelemetry's configured propagators (W3C trace context and baggage
by default, ``OTEL_PROPAGATORS`` otherwise). Nothing happens when tracing is off, when the
request carries no ``traceparent``, or when the header is malformed (the propagator ignores
it: the run starts a trace of its own, as without one).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from tether.observability.tracing import GRAPH_SCOPE, tracer


@contextmanager
def caller_trace(headers: Mapping[str, str]) -> Iterator[None]:
    """The block runs in the trace context of ``headers`` (case-insensitive mapping, such as
    Starlette's request headers), when tracing is on and they carry one."""
    if headers.get("traceparent") is None or tracer(GRAPH_SCOPE) is None:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)
