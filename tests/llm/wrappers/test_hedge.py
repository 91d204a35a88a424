"""HedgedModel: a second request only after ``delay``, the first success wins, losers are
cancelled, failures wait for the other request, and streams are not hedged.

The tests run on a virtual clock (``tests.llm.virtual_time``): delays and the models' sleeps
take no real time and fire exactly when due, so start times can be compared exactly and a
loaded machine changes nothing."""

from __future__ import annotations

import asyncio

import pytest

from tests.llm.virtual_time import now, virtual_time
from tether.core.errors import ConfigurationError, ModelTimeoutError, ModelTransientError
from tether.llm import FunctionModel, ModelRequest, ScriptedModel
from tether.llm.wrappers import HedgedModel

from .helpers import StepModel, collect


class Timed:
    """A model body that answers after ``delay`` (or raises ``error``), recording when each call
    started and whether it was cancelled."""

    def __init__(self, name: str, delay: float, error: Exception | None = None) -> None:
        self.delay, self.error = delay, error
        self.starts: list[float] = []
        self.cancelled = 0
        self.model = FunctionModel(self, name=name)

    async def __call__(self, request: ModelRequest) -> str:
        self.starts.append(now())
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return f"{self.model.model_name} after {self.delay}"


@virtual_time
async def test_a_fast_answer_fires_no_hedge() -> None:
    primary, backup = Timed("p", 0.01), Timed("b", 0.0)
    out = await HedgedModel(primary.model, delay=0.2, hedge_to=backup.model).chat("hi")
    assert out.model == "function:p"
    assert out.metadata["hedged"] == {"fired": False, "winner": 0, "requests": 1, "abandoned": 0}
    await asyncio.sleep(0.25)
    assert backup.starts == []  # no hedge was left behind either


@virtual_time
async def test_a_slow_answer_is_hedged_after_the_delay_and_the_loser_cancelled() -> None:
    primary, backup = Timed("p", 5.0), Timed("b", 0.01)
    started = now()
    out = await HedgedModel(primary.model, delay=0.1, hedge_to=backup.model).chat("hi")
    elapsed = now() - started
    assert out.model == "function:b" and out.text == "b after 0.01"
    assert out.metadata["hedged"] == {"fired": True, "winner": 1, "requests": 2, "abandoned": 1}
    assert backup.starts[0] - primary.starts[0] == pytest.approx(0.1)  # at the delay
    assert elapsed == pytest.approx(0.11) and primary.cancelled == 1  # not the primary's 5 s


@virtual_time
async def test_the_first_request_can_still_win_after_the_hedge_fired() -> None:
    primary, backup = Timed("p", 0.15), Timed("b", 5.0)
    out = await HedgedModel(primary.model, delay=0.05, hedge_to=backup.model).chat("hi")
    assert out.model == "function:p"
    assert out.metadata["hedged"] == {"fired": True, "winner": 0, "requests": 2, "abandoned": 1}
    assert backup.cancelled == 1


@virtual_time
async def test_a_failed_hedge_waits_for_the_first_request() -> None:
    primary = Timed("p", 0.2)
    backup = Timed("b", 0.0, ModelTransientError("hedge broke"))
    out = await HedgedModel(primary.model, delay=0.05, hedge_to=backup.model).chat("hi")
    assert out.model == "function:p" and out.metadata["hedged"]["winner"] == 0


@virtual_time
async def test_when_every_request_fails_the_first_error_is_raised() -> None:
    primary = Timed("p", 0.1, ModelTimeoutError("primary timed out"))
    backup = Timed("b", 0.1, ModelTransientError("backup 503"))
    with pytest.raises(ModelTimeoutError, match="primary timed out") as caught:
        await HedgedModel(primary.model, delay=0.05, hedge_to=backup.model).chat("hi")
    assert any("backup 503" in n for n in caught.value.__notes__)


@virtual_time
async def test_a_failure_before_the_delay_is_not_hedged() -> None:
    primary = Timed("p", 0.0, ModelTransientError("500"))
    backup = Timed("b", 0.0)
    with pytest.raises(ModelTransientError):
        await HedgedModel(primary.model, delay=0.1, hedge_to=backup.model).chat("hi")
    await asyncio.sleep(0.15)
    assert backup.starts == []


@virtual_time
async def test_several_hedges_start_one_delay_apart() -> None:
    delays = iter([5.0, 5.0, 0.01])
    starts: list[float] = []

    async def provider(request: ModelRequest) -> str:
        starts.append(now())
        await asyncio.sleep(next(delays))
        return f"request {len(starts)}"

    out = await HedgedModel(FunctionModel(provider), delay=0.05, max_hedges=2).chat("hi")
    assert out.metadata["hedged"] == {"fired": True, "winner": 2, "requests": 3, "abandoned": 2}
    assert starts[1] - starts[0] == pytest.approx(0.05)
    assert starts[2] - starts[0] == pytest.approx(0.1)


@virtual_time
async def test_cancelling_the_call_cancels_every_request() -> None:
    primary, backup = Timed("p", 5.0), Timed("b", 5.0)
    task = asyncio.create_task(
        HedgedModel(primary.model, delay=0.02, hedge_to=backup.model).chat("hi")
    )
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert primary.cancelled == 1 and backup.cancelled == 1


@virtual_time
async def test_streams_are_the_inner_stream_unhedged() -> None:
    inner = StepModel([[0.1, "slow ", "text"]])
    backup = ScriptedModel(["never"])
    deltas, out = await collect(HedgedModel(inner, delay=0.01, hedge_to=backup))
    assert deltas == ["slow ", "text"] and backup.calls == 0 and "hedged" not in out.metadata


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        HedgedModel(ScriptedModel([]), delay=-1)
    with pytest.raises(ConfigurationError):
        HedgedModel(ScriptedModel([]), delay=1, max_hedges=0)
    for bad in ("2", 1.5, True):  # text was a TypeError; a float or a bool was taken
        with pytest.raises(ConfigurationError, match="an int max_hedges"):
            HedgedModel(ScriptedModel([]), delay=1, max_hedges=bad)  # type: ignore[arg-type]


@virtual_time
async def test_a_hedged_call_is_charged_the_prompts_of_the_requests_it_abandoned() -> None:
    """Before: the answer's usage was its winner's alone, though the provider had read (and
    bills) the prompt of the request cancelled under it: with max_hedges=2 a budget saw a
    third of the input tokens it paid for."""
    prompt = "summarise the refund policy for order 1234 " * 10
    alone = await FunctionModel(lambda r: "ok").chat(prompt)
    delays = iter([5.0, 5.0, 0.01])

    async def provider(request: ModelRequest) -> str:
        await asyncio.sleep(next(delays))
        return "ok"

    model = FunctionModel(provider)
    out = await HedgedModel(model, delay=0.05, max_hedges=2).chat(prompt)
    assert out.metadata["hedged"]["abandoned"] == 2
    assert out.usage.input_tokens == 3 * alone.usage.input_tokens  # its own and two abandoned
    assert out.usage.output_tokens == alone.usage.output_tokens and out.usage.estimated
    fast = await HedgedModel(FunctionModel(lambda r: "ok"), delay=0.05).chat(prompt)
    assert fast.usage == alone.usage  # no hedge: nothing more
