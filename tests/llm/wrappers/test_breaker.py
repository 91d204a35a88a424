"""BreakerModel: open after N unhealthy failures, refuse without calling, half-open trial,
close on success, reopen on a failed trial; which errors count; one breaker per provider."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tether.core.breaker import BreakerPolicy, BreakerState
from tether.core.errors import (
    ConfigurationError,
    ModelCircuitOpenError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelTransientError,
)
from tether.llm import FunctionModel, ModelRequest, ScriptedModel
from tether.llm.wrappers import (
    PROVIDER_BREAKERS,
    BreakerModel,
    RetryingModel,
    TimeoutModel,
    breaker_key,
    model_breaker,
    provider_breaker,
)
from tether.testing import FakeClock

from .helpers import StepModel, collect

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def guarded(
    inner: ScriptedModel | FunctionModel | StepModel, clock: FakeClock, threshold: int = 3
) -> BreakerModel:
    policy = BreakerPolicy(failure_threshold=threshold, reset_timeout=30.0)
    return BreakerModel(inner, breaker=model_breaker("p", policy, clock))


async def test_open_refuses_without_calling_then_a_half_open_trial_closes_it() -> None:
    clock = FakeClock()
    down = [ModelTransientError("500"), ModelTimeoutError("slow"), ModelRateLimitedError("429")]
    inner = ScriptedModel([*down, "recovered", "again"])
    model = guarded(inner, clock)
    for _ in range(3):
        with pytest.raises((ModelTransientError, ModelTimeoutError, ModelRateLimitedError)):
            await model.chat("hi")
    assert model.breaker.state is OPEN

    with pytest.raises(ModelCircuitOpenError, match="open after 3 consecutive failures") as e:
        await model.chat("hi")
    assert e.value.retry_in == pytest.approx(30.0) and inner.calls == 3  # not called
    clock.advance(20)
    with pytest.raises(ModelCircuitOpenError) as e:
        await model.chat("hi")
    assert e.value.retry_in == pytest.approx(10.0) and inner.calls == 3

    clock.advance(10)
    assert (await model.chat("hi")).text == "recovered"  # the half-open trial
    assert model.breaker.state is CLOSED and inner.calls == 4
    assert model.breaker.transitions == [(CLOSED, OPEN), (OPEN, HALF), (HALF, CLOSED)]
    assert (await model.chat("hi")).text == "again"


async def test_a_failed_trial_opens_it_again_for_a_full_reset_timeout() -> None:
    clock = FakeClock()
    inner = ScriptedModel([ModelTransientError("500")] * 3 + ["ok"])
    model = guarded(inner, clock, threshold=2)
    for _ in range(2):
        with pytest.raises(ModelTransientError):
            await model.chat("hi")
    clock.advance(30)
    with pytest.raises(ModelTransientError):  # the trial reached the provider and failed
        await model.chat("hi")
    assert model.breaker.state is OPEN and inner.calls == 3
    clock.advance(29)
    with pytest.raises(ModelCircuitOpenError) as e:
        await model.chat("hi")
    assert e.value.retry_in == pytest.approx(1.0) and inner.calls == 3
    clock.advance(1)
    assert (await model.chat("hi")).text == "ok"
    assert model.breaker.transitions == [
        (CLOSED, OPEN),
        (OPEN, HALF),
        (HALF, OPEN),
        (OPEN, HALF),
        (HALF, CLOSED),
    ]


async def test_refused_requests_say_nothing_about_health() -> None:
    inner = ScriptedModel([ModelRequestError("400 bad input")] * 5)
    model = guarded(inner, FakeClock(), threshold=2)
    for _ in range(5):
        with pytest.raises(ModelRequestError):
            await model.chat("hi")
    assert model.breaker.state is CLOSED and inner.calls == 5 and model.breaker.failures == 0


async def test_a_success_resets_the_consecutive_count() -> None:
    inner = ScriptedModel(
        [
            ModelTransientError("1"),
            ModelTransientError("2"),
            "ok",
            ModelTransientError("3"),
            ModelTransientError("4"),
        ]
    )
    model = guarded(inner, FakeClock(), threshold=3)
    for _ in range(5):
        with contextlib.suppress(ModelTransientError):
            await model.chat("hi")
    assert model.breaker.state is CLOSED and model.breaker.failures == 2


async def test_half_open_lets_one_trial_through_and_a_cancelled_trial_gives_its_slot_back() -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    in_trial = asyncio.Event()
    calls = 0

    async def provider(request: ModelRequest) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ModelTransientError("down")
        in_trial.set()
        await gate.wait()
        return "up"

    model = guarded(FunctionModel(provider), clock, threshold=1)
    with pytest.raises(ModelTransientError):
        await model.chat("hi")
    clock.advance(30)
    trial = asyncio.create_task(model.chat("hi"))
    await in_trial.wait()  # the trial call has reached the provider
    assert model.breaker.state is HALF and calls == 2
    with pytest.raises(ModelCircuitOpenError, match="trial call is in flight"):
        await model.chat("hi")
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert model.breaker.state is HALF  # no verdict from a cancelled call

    gate.set()
    assert (await model.chat("hi")).text == "up"  # the slot was released: a new trial
    assert model.breaker.state is CLOSED and calls == 3


async def test_stream_failures_count_and_a_finished_stream_closes_it() -> None:
    clock = FakeClock()
    inner = StepModel([[ModelTransientError("500")], ["fine"]])
    model = guarded(inner, clock, threshold=1)
    with pytest.raises(ModelTransientError):
        await collect(model)
    assert model.breaker.state is OPEN
    with pytest.raises(ModelCircuitOpenError):
        await collect(model)
    assert inner.opened == 1
    clock.advance(30)
    deltas, _out = await collect(model)
    assert deltas == ["fine"] and model.breaker.state is CLOSED


async def test_a_caller_leaving_a_flowing_stream_counts_as_healthy() -> None:
    clock = FakeClock()
    model = guarded(StepModel([[ModelTransientError("x")], ["a", "b", "c"]]), clock, threshold=1)
    with pytest.raises(ModelTransientError):
        await collect(model)
    clock.advance(30)
    stream = model.stream(
        ModelRequest.model_validate({"messages": [{"role": "user", "content": "x"}]})
    )
    assert (await anext(stream)).delta == "a"
    await stream.aclose()  # type: ignore[attr-defined]
    assert model.breaker.state is CLOSED


class Endpoint(ScriptedModel):
    """A provider with a base URL, like the HTTP providers."""

    def __init__(self, model: str, base_url: str) -> None:
        super().__init__([ModelTransientError("500")], cycle=True, name=model)
        self.provider = "openai-compatible"
        self.base_url = base_url


async def test_models_on_one_endpoint_share_one_breaker_through_their_wrappers() -> None:
    policy = BreakerPolicy(failure_threshold=2)
    big = BreakerModel(
        RetryingModel(TimeoutModel(Endpoint("big", "http://h:1/v1"), 5.0)), policy=policy
    )
    small = BreakerModel(Endpoint("small", "http://h:1/v1"), policy=policy)
    other = BreakerModel(Endpoint("small", "http://h:2/v1"), policy=policy)
    assert breaker_key(big) == "openai-compatible@http://h:1/v1"
    assert (
        big.breaker is small.breaker is provider_breaker("openai-compatible@http://h:1/v1", policy)
    )
    assert other.breaker is not small.breaker

    for model in (small, small):
        with pytest.raises(ModelTransientError):
            await model.chat("hi")
    with pytest.raises(ModelCircuitOpenError, match="openai-compatible@http://h:1/v1"):
        await big.chat("hi")  # opened by the other model on the same endpoint
    assert isinstance(big.inner, RetryingModel)
    with pytest.raises(ModelTransientError):
        await other.chat("hi")  # a different endpoint is not affected


def test_models_without_a_base_url_are_keyed_by_name_and_keys_can_be_chosen() -> None:
    a = BreakerModel(ScriptedModel([], name="a"))
    assert breaker_key(a) == "scripted:a" and "scripted:a" in PROVIDER_BREAKERS
    b = BreakerModel(ScriptedModel([], name="b"), key="shared")
    c = BreakerModel(ScriptedModel([], name="c"), key="shared")
    assert b.breaker is c.breaker is not a.breaker


def test_one_provider_has_one_policy() -> None:
    BreakerModel(ScriptedModel([], name="a"), policy=BreakerPolicy(failure_threshold=2))
    with pytest.raises(ConfigurationError, match="already exists"):
        BreakerModel(ScriptedModel([], name="a"), policy=BreakerPolicy(failure_threshold=9))
    with pytest.raises(ConfigurationError, match="not both"):
        BreakerModel(
            ScriptedModel([]), breaker=model_breaker("x", BreakerPolicy()), policy=BreakerPolicy()
        )
