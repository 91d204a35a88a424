"""Model calls produce OpenTelemetry spans that follow the GenAI semantic conventions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tether import START, Graph, Runtime
from tether.core.errors import ModelTransientError
from tether.llm import ModelResponse, ScriptedModel, Usage
from tether.store.memory import MemoryStore

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


async def test_chat_span_carries_request_response_and_usage(spans: InMemorySpanExporter) -> None:
    reply = ModelResponse(
        text="ok",
        id="resp-1",
        model="openai:gpt-4o-mini",
        usage=Usage(input_tokens=12, output_tokens=3),
    )
    model = ScriptedModel([reply], name="gpt-4o-mini")
    await model.chat("hi", temperature=0.5, max_tokens=20, seed=7)
    (span,) = spans.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "scripted"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.request.max_tokens"] == 20
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.id"] == "resp-1"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 12
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["tether.gen_ai.cost_usd"] == pytest.approx((12 * 0.15 + 3 * 0.6) / 1e6)


async def test_streamed_call_records_ttft_and_tpot(spans: InMemorySpanExporter) -> None:
    await ScriptedModel(["a b c d e f g h"], stream_chunk=2).chat("go", stream=True)
    attrs = dict(spans.get_finished_spans()[0].attributes or {})
    assert attrs["tether.gen_ai.ttft_s"] >= 0
    assert attrs["tether.gen_ai.tpot_s"] >= 0


async def test_failed_call_sets_error_type(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ModelTransientError):
        await ScriptedModel([ModelTransientError("503")]).chat("x")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ModelTransientError"


class S(TypedDict, total=False):
    a: str


async def test_spans_inside_a_run_name_the_run_and_node(spans: InMemorySpanExporter) -> None:
    model = ScriptedModel(["x"])

    async def ask(state: S) -> dict[str, Any]:
        return {"a": (await model.chat("q")).text}

    g = Graph(S, name="traced")
    g.add_node("ask", ask).add_edge(START, "ask")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(g.compile(), {})
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    attrs = dict(span.attributes or {})
    assert attrs["tether.run_id"] == res.run_id
    assert attrs["tether.node"] == "ask"
    (node,) = [s for s in spans.get_finished_spans() if s.name == "invoke_agent ask"]
    assert span.parent is not None and span.parent.span_id == node.context.span_id
