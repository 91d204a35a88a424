"""TimeoutModel: a deadline on complete; first-chunk and idle deadlines on streams.

Every test runs on a virtual clock (``tests.llm.virtual_time``): deadlines and the scripted
models' sleeps take no real time and fire exactly when due, so the tests say the same on a
loaded machine."""

from __future__ import annotations

import asyncio

import pytest

from tests.llm.virtual_time import now, virtual_time
from tether.core.errors import ConfigurationError, ModelTimeoutError
from tether.llm import FunctionModel, ModelRequest
from tether.llm.wrappers import TimeoutModel

from .helpers import StepModel, collect


@virtual_time
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
    started = now()
    with pytest.raises(ModelTimeoutError, match=r"function:slow gave no answer within 0\.05s") as e:
        await model.chat("hi")
    assert now() - started == pytest.approx(0.05)  # cut off at the deadline, not after 30 s
    assert cancelled.is_set()
    assert e.value.retryable and e.value.model == "function:slow"


@virtual_time
async def test_a_call_within_the_deadline_is_untouched() -> None:
    async def quick(request: ModelRequest) -> str:
        await asyncio.sleep(0.99)
        return "fine"

    model = TimeoutModel(FunctionModel(quick, name="q"), 1.0)
    out = await model.chat("hi")
    assert out.text == "fine" and out.model == "function:q" and model.name == "function:q"


@virtual_time
async def test_a_stream_must_start_within_the_first_chunk_timeout() -> None:
    inner = StepModel([[0.5, "late"]])
    model = TimeoutModel(inner, 10.0, first_chunk_timeout=0.05)
    started = now()
    with pytest.raises(ModelTimeoutError, match=r"no first chunk within 0\.05s"):
        await collect(model)
    assert now() - started == pytest.approx(0.05)
    assert inner.closed == 1 and inner.chunks_sent == 0


@virtual_time
async def test_a_stream_that_stalls_between_chunks_hits_the_idle_timeout() -> None:
    inner = StepModel([["one ", 0.5, "two"]])
    model = TimeoutModel(inner, 10.0, idle_timeout=0.05)
    deltas: list[str] = []
    started = now()
    with pytest.raises(ModelTimeoutError, match=r"no next chunk within 0\.05s"):
        await model.chat("hi", on_token=deltas.append)
    assert now() - started == pytest.approx(0.05)
    assert deltas == ["one "] and inner.closed == 1


@virtual_time
async def test_a_long_stream_that_keeps_flowing_is_not_cut_off() -> None:
    inner = StepModel([[s for _ in range(10) for s in (0.03, "x")]])
    model = TimeoutModel(inner, 0.1)  # each gap 0.03 s < 0.1 s, the whole stream 0.3 s > 0.1 s
    started = now()
    deltas, out = await collect(model)
    assert now() - started == pytest.approx(0.3)
    assert out.text == "x" * 10 and len(deltas) == 10


@virtual_time
async def test_time_the_consumer_spends_between_chunks_does_not_count() -> None:
    inner = StepModel([["a", "b", "c"]])
    stream = TimeoutModel(inner, 0.1).stream(
        ModelRequest.model_validate({"messages": [{"role": "user", "content": "x"}]})
    )
    seen = []
    async for chunk in stream:
        seen.append(chunk.delta)
        await asyncio.sleep(5.0)  # far past every deadline, between chunks
    assert seen == ["a", "b", "c", ""] and inner.closed == 1


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
    [
        {"timeout": 0},
        {"timeout": 1, "first_chunk_timeout": -1},
        {"timeout": 1, "idle_timeout": 0},
        {"timeout": float("nan")},  # was taken: a deadline that never fires
        {"timeout": 1, "idle_timeout": float("nan")},
        {"timeout": "30"},  # was a TypeError
    ],
)
def test_timeouts_that_are_not_positive_numbers_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="must be a finite number of seconds > 0"):
        TimeoutModel(FunctionModel(lambda r: "x"), **kwargs)
