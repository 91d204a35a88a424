"""TimeoutModel: a deadline on complete; first-chunk and idle deadlines on streams."""

from __future__ import annotations

import asyncio
import time

import pytest

from tether.core.errors import ConfigurationError, ModelTimeoutError
from tether.llm import FunctionModel, ModelRequest
from tether.llm.wrappers import TimeoutModel

from .helpers import StepModel, collect


async def test_a_slow_call_raises_model_timeout_and_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def slow(request: ModelRequest) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "too late"

    model = TimeoutModel(FunctionModel(slow), 0.05)
    started = time.perf_counter()
    with pytest.raises(ModelTimeoutError, match=r"function:slow gave no answer within 0\.05s") as e:
        await model.chat("hi")
    assert time.perf_counter() - started < 1.0
    assert cancelled.is_set()
    assert e.value.retryable and e.value.model == "function:slow"


async def test_a_call_within_the_deadline_is_untouched() -> None:
    async def quick(request: ModelRequest) -> str:
        await asyncio.sleep(0.01)
        return "fine"

    model = TimeoutModel(FunctionModel(quick, name="q"), 1.0)
    out = await model.chat("hi")
    assert out.text == "fine" and out.model == "function:q" and model.name == "function:q"


async def test_a_stream_must_start_within_the_first_chunk_timeout() -> None:
    inner = StepModel([[0.5, "late"]])
    model = TimeoutModel(inner, 10.0, first_chunk_timeout=0.05)
    started = time.perf_counter()
    with pytest.raises(ModelTimeoutError, match=r"no first chunk within 0\.05s"):
        await collect(model)
    assert time.perf_counter() - started < 0.4
    assert inner.closed == 1 and inner.chunks_sent == 0


async def test_a_stream_that_stalls_between_chunks_hits_the_idle_timeout() -> None:
    inner = StepModel([["one ", 0.5, "two"]])
    model = TimeoutModel(inner, 10.0, idle_timeout=0.05)
    deltas: list[str] = []
    with pytest.raises(ModelTimeoutError, match=r"no next chunk within 0\.05s"):
        await model.chat("hi", on_token=deltas.append)
    assert deltas == ["one "] and inner.closed == 1


async def test_a_long_stream_that_keeps_flowing_is_not_cut_off() -> None:
    inner = StepModel([[s for _ in range(10) for s in (0.03, "x")]])
    model = TimeoutModel(inner, 0.1)  # each gap 0.03 s < 0.1 s, the whole stream 0.3 s > 0.1 s
    started = time.perf_counter()
    deltas, out = await collect(model)
    assert time.perf_counter() - started > 0.25
    assert out.text == "x" * 10 and len(deltas) == 10


async def test_a_consumer_that_stops_early_closes_the_inner_stream() -> None:
    inner = StepModel([["a", "b", "c"]])
    stream = TimeoutModel(inner, 1.0).stream(
        ModelRequest.model_validate({"messages": [{"role": "user", "content": "x"}]})
    )
    async for chunk in stream:
        assert chunk.delta == "a"
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert inner.closed == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 0}, {"timeout": 1, "first_chunk_timeout": -1}, {"timeout": 1, "idle_timeout": 0}],
)
def test_non_positive_timeouts_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="must be > 0"):
        TimeoutModel(FunctionModel(lambda r: "x"), **kwargs)
