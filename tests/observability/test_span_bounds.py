"""Every value a tether span records is bounded: a 5 MB tool argument, a 5 MB prompt or answer, a
long stop sequence or error type is cut to MAX_TEXT characters ending with a marker naming its
full size, and a sequence holds at most MAX_ITEMS items, so OTLP exporters and collectors (which
reject or drop spans over a few MB) get every span."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether.core.errors import ToolError
from tether.llm import ScriptedModel
from tether.observability import configure_tracing, shutdown_tracing
from tether.observability.span_values import (
    MAX_ITEMS,
    MAX_TEXT,
    attribute_value,
    event_attributes,
)
from tether.tools import ToolExecutor, tool

FIVE_MB = 5_000_000


@pytest.fixture
def captured() -> Iterator[InMemorySpanExporter]:
    """Tracing into memory with content capture on (prompts, answers, tool arguments)."""
    exporter = InMemorySpanExporter()
    configure_tracing(exporter, capture_content=True)
    yield exporter
    shutdown_tracing()


def check_bounded(value: Any, where: str) -> None:
    if isinstance(value, str):
        assert len(value) <= MAX_TEXT, (where, len(value))
    elif isinstance(value, tuple):
        assert len(value) <= MAX_ITEMS, (where, len(value))
        for item in value:
            check_bounded(item, where)


def check_span(span: ReadableSpan) -> None:
    for key, value in (span.attributes or {}).items():
        check_bounded(value, f"{span.name}: {key}")
    for event in span.events:
        for key, value in (event.attributes or {}).items():
            check_bounded(value, f"{span.name} event {event.name}: {key}")


def attrs(exporter: InMemorySpanExporter, name: str) -> dict[str, Any]:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    check_span(span)
    return dict(span.attributes or {})


def marked(value: Any, size: int) -> bool:
    return isinstance(value, str) and value.endswith(f"…[cut: {size:,} bytes in all]")


async def test_a_5_mb_tool_argument_and_result_are_cut_with_their_full_size(
    captured: InMemorySpanExporter,
) -> None:
    @tool
    def echo(data: str) -> str:
        """Answer what it is sent."""
        return data

    tools = ToolExecutor([echo], max_args_bytes=None, max_result_bytes=None)
    assert (await tools.call("echo", {"data": "a" * FIVE_MB})).ok
    got = attrs(captured, "execute_tool echo")
    args = got["gen_ai.tool.call.arguments"]
    assert marked(args, FIVE_MB + len('{"data":""}')) and args.startswith('{"data":"aaa')
    assert len(args) == MAX_TEXT
    assert marked(got["gen_ai.tool.call.result"], FIVE_MB + 2)


async def test_a_huge_prompt_answer_and_stop_sequence_are_cut(
    captured: InMemorySpanExporter,
) -> None:
    model = ScriptedModel(["b" * FIVE_MB, "ok"], name="m")
    stops = ["s" * 10_000, *(f"stop{i}" for i in range(400))]
    await model.chat("q" * FIVE_MB, stop=stops[:1])
    await model.chat("hi", stop=stops[1:])
    first, second = [dict(s.attributes or {}) for s in captured.get_finished_spans()]
    for span in captured.get_finished_spans():
        check_span(span)
    assert "[cut: " in first["gen_ai.input.messages"]
    assert "[cut: " in first["gen_ai.output.messages"]
    (stop,) = first["gen_ai.request.stop_sequences"]
    assert marked(stop, 10_000)
    many = second["gen_ai.request.stop_sequences"]  # 400 items: recorded as cut JSON text
    assert isinstance(many, str) and many.startswith('["stop0","stop1"') and "[cut: " in many


async def test_a_huge_error_message_stays_off_the_span(captured: InMemorySpanExporter) -> None:
    @tool
    def loud() -> str:
        """Fail with a 5 MB message."""
        raise ToolError("e" * FIVE_MB)

    assert not (await ToolExecutor([loud]).call("loud", {})).ok
    (span,) = captured.get_finished_spans()
    check_span(span)
    assert span.status.description is not None and len(span.status.description) <= MAX_TEXT


def test_event_data_and_sequences_are_bounded() -> None:
    data = {"names": ["n" * 10_000] * 3, "ids": list(range(1000)), "note": "x" * FIVE_MB}
    got = event_attributes(data, capture=True)
    for key, value in got.items():
        check_bounded(value, key)
    assert [marked(n, 10_000) for n in got["names"]] == [True] * 3  # type: ignore[union-attr]
    assert isinstance(got["ids"], str) and got["ids"].startswith("[0,1,2")
    assert marked(got["note"], FIVE_MB)
    assert attribute_value("short") == "short" and attribute_value((1, 2)) == (1, 2)
    assert attribute_value("é" * 3000).endswith("[cut: 6,000 bytes in all]")  # type: ignore[union-attr]
