"""A rebuilt timeline (``timeline``) as OpenTelemetry spans: a JSON document of spans, or sent
to an OTLP endpoint (``tether trace RUN --export json|otlp``).

The run's span keeps the run's own trace and span ids (``trace_ids``): a backend that already
has the live trace of the run sees the same root. The other spans get stable ids derived from
the run and the part they stand for, so exporting twice sends the same spans. Node spans are
named ``node {name}``: the stored events do not say which nodes were agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.core.errors import TraceExportError
from tether.observability import semconv as sc
from tether.observability.pinned_ids import PinnableIds, pinned
from tether.observability.span_values import event_attributes
from tether.observability.timeline import MODEL, NODE, RUN, STEP, TOOL, Timeline, TimelineSpan
from tether.observability.trace_ids import RunTraceIds, span_id_for


@dataclass(slots=True)
class ExportSpan:
    span_id: int
    parent_span_id: int | None
    name: str
    kind: str
    """``INTERNAL`` or ``CLIENT`` (model calls)."""
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]]
    error: str | None = None


def _ns(t: float) -> int:
    return round(t * 1e9)


def _attributes(tl: Timeline, span: TimelineSpan) -> dict[str, Any]:
    a = span.attrs
    base: dict[str, Any] = {sc.RUN_ID: tl.run_id}
    if span.kind == RUN:
        base |= {
            sc.OPERATION_NAME: sc.OP_INVOKE_WORKFLOW,
            sc.WORKFLOW_NAME: tl.workflow,
            sc.RUN_STATUS: tl.status,
            sc.RUN_STEPS: int(a.get("steps", 0)),
        }
    elif span.kind == STEP:
        base[sc.STEP] = int(span.key.split(":")[1])
    elif span.kind == NODE:
        base[sc.NODE] = span.name.removeprefix("node ")
        if "task_id" in a:
            base[sc.TASK_ID] = a["task_id"]
    elif span.kind == MODEL:
        provider, _, model = str(a.get("model") or "").rpartition(":")
        base |= {
            sc.OPERATION_NAME: sc.OP_CHAT,
            sc.REQUEST_MODEL: model,
            sc.RESPONSE_MODEL: model,
            sc.USAGE_INPUT_TOKENS: int(a.get("input_tokens", 0)),
            sc.USAGE_OUTPUT_TOKENS: int(a.get("output_tokens", 0)),
        }
        if provider:
            base[sc.PROVIDER_NAME] = provider
        if a.get("finish_reason") is not None:
            base[sc.RESPONSE_FINISH_REASONS] = (str(a["finish_reason"]),)
        if a.get("cost") is not None:
            base[sc.COST_USD] = float(a["cost"])
        if a.get("ttft") is not None:
            base[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = float(a["ttft"])
        if a.get("error"):
            base[sc.ERROR_TYPE] = str(a.get("error_type") or a["error"])
    elif span.kind == TOOL:
        base |= {
            sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.TOOL_NAME: str(a.get("tool")),
            sc.TOOL_TYPE: "function",
            sc.OUTCOME: "ok" if a.get("ok") else "error",
            sc.ATTEMPTS: int(a.get("attempts", 0)),
            sc.TOOL_RETRIES: int(a.get("retries", 0)),
        }
        if a.get("scope"):
            base[sc.TOOL_SCOPE] = str(a["scope"])
        if a.get("error"):
            base[sc.ERROR_TYPE] = str(a["error"])
    return base


def export_spans(tl: Timeline, ids: RunTraceIds, now: float) -> list[ExportSpan]:
    """The timeline's spans with their ids, parents first."""
    span_ids = {
        s.key: ids.span_id if s.kind == RUN else span_id_for(tl.run_id, s.key) for s in tl.spans
    }
    out: list[ExportSpan] = []
    for s in tl.spans:
        parent = span_ids[s.parent] if s.parent is not None else ids.parent_span_id
        end = s.end if s.end is not None else now
        error = None
        if s.kind == RUN and tl.status == "FAILED":
            error = "run failed"
        elif s.kind == TOOL and not s.attrs.get("ok"):
            error = str(s.attrs.get("error") or "tool call failed")
        elif s.kind == MODEL and s.attrs.get("error"):
            error = str(s.attrs["error"])
        out.append(
            ExportSpan(
                span_ids[s.key],
                parent,
                s.name,
                "CLIENT" if s.kind == MODEL else "INTERNAL",
                _ns(s.start),
                _ns(max(end, s.start)),
                _attributes(tl, s),
                [(m.name, _ns(m.ts), event_attributes(m.data, False)) for m in s.marks],
                error,
            )
        )
    return out


def export_document(tl: Timeline, ids: RunTraceIds, now: float) -> dict[str, Any]:
    """A JSON document of the run's spans (OTLP's field names, ids in hex)."""
    return {
        "run_id": tl.run_id,
        "workflow": tl.workflow,
        "status": tl.status,
        "trace_id": f"{ids.trace_id:032x}",
        "schema_url": sc.SCHEMA_URL,
        "spans": [
            {
                "trace_id": f"{ids.trace_id:032x}",
                "span_id": f"{s.span_id:016x}",
                "parent_span_id": (
                    f"{s.parent_span_id:016x}" if s.parent_span_id is not None else None
                ),
                "name": s.name,
                "kind": s.kind,
                "start_time_unix_nano": s.start_ns,
                "end_time_unix_nano": s.end_ns,
                "attributes": s.attributes,
                "events": [
                    {"name": n, "time_unix_nano": t, "attributes": a} for n, t, a in s.events
                ],
                "status": {"code": "ERROR", "message": s.error} if s.error else {"code": "UNSET"},
            }
            for s in export_spans(tl, ids, now)
        ],
    }


EXPORT_BATCH = 512
"""Spans per export request (the SDK's batch processor's default): one request per batch, not
one per span, so a collector that is down costs one exporter timeout, not one per span."""


def send_spans(
    tl: Timeline, ids: RunTraceIds, now: float, exporter: Any, *, where: str = "the exporter"
) -> int:
    """Send the run's spans through the SDK ``exporter`` (an OTLP exporter); returns how many.
    Uses a provider of its own: the application's tracing is left as it is. Raises
    TraceExportError when the exporter did not take them all (saying how many it took)."""
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from tether.observability.run_trace import remote_parent

    class Collect(SpanProcessor):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def on_end(self, span: ReadableSpan) -> None:
            self.spans.append(span)

    gen: Any = PinnableIds(RandomIdGenerator())
    provider = TracerProvider(
        resource=Resource.create({"service.name": "tether"}), id_generator=gen
    )
    ended = Collect()
    provider.add_span_processor(ended)
    tracer = provider.get_tracer("tether.trace_export", schema_url=sc.SCHEMA_URL)
    for s in export_spans(tl, ids, now):
        parent = (
            remote_parent(ids.trace_id, s.parent_span_id)
            if s.parent_span_id is not None
            else Context()
        )
        kind = SpanKind.CLIENT if s.kind == "CLIENT" else SpanKind.INTERNAL
        with pinned(ids.trace_id, s.span_id):
            span = tracer.start_span(
                s.name, context=parent, kind=kind, attributes=s.attributes, start_time=s.start_ns
            )
        for name, ts, attrs in s.events:
            span.add_event(name, attrs, timestamp=ts)
        if s.error:
            span.set_status(Status(StatusCode.ERROR, s.error))
        span.end(end_time=s.end_ns)
    provider.shutdown()
    try:
        return _export(ended.spans, exporter, tl.run_id, where)
    finally:
        exporter.shutdown()


def _export(spans: list[Any], exporter: Any, run_id: str, where: str) -> int:
    from opentelemetry.sdk.trace.export import SpanExportResult

    sent = 0
    for i in range(0, len(spans), EXPORT_BATCH):
        batch = spans[i : i + EXPORT_BATCH]
        try:
            result = exporter.export(batch)
            why = "it answered with an error or not at all (see the exporter's log above)"
        except Exception as exc:  # an exporter that raises rather than report FAILURE
            result, why = None, f"{type(exc).__name__}: {exc}"
        if result is not SpanExportResult.SUCCESS:
            raise TraceExportError(
                f"{where} did not take the spans of run {run_id}: {sent} of {len(spans)} "
                f"sent, {why}; check that the collector is up and reachable, then export "
                "again (the same spans are sent again, with the same ids)",
                sent=sent,
                total=len(spans),
            )
        sent += len(batch)
    return sent
