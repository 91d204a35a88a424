"""Sending a rebuilt run's spans (``tether trace --export otlp``): one request per batch, and an
exporter that does not take them is an error saying how many went.

Before, each span was its own export through a SimpleSpanProcessor, whose failures the SDK
only logs: with the collector down, a 13-span run spent 90 s retrying span by span and then
printed "sent 13 spans" with exit status 0."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tether.core.errors import TraceExportError
from tether.core.lifecycle import RunStatus
from tether.observability.timeline import build_timeline
from tether.observability.timeline_export import EXPORT_BATCH, send_spans
from tether.observability.trace_ids import RunTraceIds
from tether.store.types import Event, RunRecord

T0 = 1000.0
STEPS = 700


def _timeline() -> Any:
    events = [
        Event("r1", i, "step_finished", T0 + i, i, None, {"tasks": [f"{i}:n:0"], "started": T0})
        for i in range(1, STEPS + 1)
    ]
    run = RunRecord("r1", "wf", RunStatus.COMPLETED, step=STEPS, created_at=T0)
    return build_timeline(run, events, now=T0 + STEPS + 1)


class Exporter(SpanExporter):
    def __init__(self, fail_at: int | None = None, raises: bool = False) -> None:
        self.batches: list[int] = []
        self.fail_at = fail_at
        self.raises = raises
        self.shut = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.fail_at is not None and len(self.batches) == self.fail_at:
            if self.raises:
                raise ConnectionError("collector gone")
            return SpanExportResult.FAILURE
        self.batches.append(len(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


def test_spans_go_in_batches() -> None:
    exporter = Exporter()
    sent = send_spans(_timeline(), RunTraceIds(1, 2, None), T0 + STEPS, exporter)
    assert sent == 1 + 2 * STEPS  # the run, then a step and its node per step
    assert exporter.batches == [EXPORT_BATCH, EXPORT_BATCH, sent - 2 * EXPORT_BATCH]
    assert exporter.shut


@pytest.mark.parametrize("raises", [False, True])
def test_spans_the_exporter_did_not_take_are_an_error_saying_how_many_went(raises: bool) -> None:
    exporter = Exporter(fail_at=1, raises=raises)
    with pytest.raises(TraceExportError, match="http://collector:4318 did not take") as got:
        send_spans(
            _timeline(), RunTraceIds(1, 2, None), T0, exporter, where="http://collector:4318"
        )
    assert got.value.sent == EXPORT_BATCH and got.value.total == 1 + 2 * STEPS
    assert f"{EXPORT_BATCH} of {1 + 2 * STEPS} sent" in str(got.value)
    assert ("collector gone" in str(got.value)) is raises
    assert exporter.shut
