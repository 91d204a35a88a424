"""RetryingModel: what is retried, how long it waits (backoff, jitter, Retry-After), attempts
recorded, and streams retried only before their first chunk."""

from __future__ import annotations

import random

import pytest

from tether.core.errors import (
    ConfigurationError,
    ModelCircuitOpenError,
    ModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelResponseError,
    ModelTimeoutError,
    ModelTransientError,
    StructuredOutputError,
)
from tether.llm import ScriptedModel
from tether.llm.wrappers import ModelRetry, RetryingModel

from .helpers import RecordingSleep, StepModel, collect

FIXED = ModelRetry(jitter=False)  # waits 0.5, 1.0, 2.0 ...


async def test_retryable_errors_are_retried_with_growing_waits() -> None:
    inner = ScriptedModel(
        [
            ModelTransientError("500"),
            ModelTimeoutError("slow"),
            ModelResponseError("bad json"),
            "ok",
        ],
        name="flaky",
    )
    sleep = RecordingSleep()
    model = RetryingModel(inner, ModelRetry(max_attempts=4, jitter=False), sleep=sleep)
    out = await model.chat("hi")
    assert out.text == "ok"
    assert inner.calls == 4
    assert sleep.waits == [0.5, 1.0, 2.0]
    assert out.metadata["attempts"] == 4
    assert out.model == "scripted:flaky" and model.name == "scripted:flaky"


async def test_a_first_time_success_records_one_attempt_and_never_sleeps() -> None:
    sleep = RecordingSleep()
    out = await RetryingModel(ScriptedModel(["ok"]), sleep=sleep).chat("hi")
    assert out.metadata["attempts"] == 1 and sleep.waits == []


async def test_gives_up_after_max_attempts_raising_the_last_error() -> None:
    errors = [ModelTransientError(f"500 #{i}") for i in range(3)]
    inner = ScriptedModel([*errors, "never reached"])
    sleep = RecordingSleep()
    with pytest.raises(ModelTransientError, match="500 #2") as caught:
        await RetryingModel(inner, FIXED, sleep=sleep).chat("hi")
    assert inner.calls == 3 and sleep.waits == [0.5, 1.0]
    assert any("gave up after 3 attempts" in n for n in caught.value.__notes__)


@pytest.mark.parametrize(
    "error",
    [
        ModelRequestError("401 bad key"),
        ModelCircuitOpenError("open", retry_in=3.0),
        StructuredOutputError("schema"),
        ModelError("generic"),
    ],
)
async def test_non_retryable_errors_are_raised_at_once(error: ModelError) -> None:
    inner = ScriptedModel([error, "ok"])
    sleep = RecordingSleep()
    with pytest.raises(type(error)):
        await RetryingModel(inner, sleep=sleep).chat("hi")
    assert inner.calls == 1 and sleep.waits == []


async def test_other_exceptions_are_not_retried() -> None:
    inner = ScriptedModel([ValueError("a bug"), "ok"])
    with pytest.raises(ValueError, match="a bug"):
        await RetryingModel(inner, sleep=RecordingSleep()).chat("hi")
    assert inner.calls == 1


def test_backoff_grows_geometrically_and_is_capped() -> None:
    policy = ModelRetry(initial_interval=1.0, backoff_factor=3.0, max_interval=5.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 3.0, 5.0, 5.0, 5.0]


def test_full_jitter_spreads_over_zero_to_base() -> None:
    policy = ModelRetry(initial_interval=2.0, jitter=True)
    rand = random.Random(7).random
    waits = [policy.backoff(2, rand) for _ in range(2000)]  # base 4.0
    assert all(0.0 <= w <= 4.0 for w in waits)
    assert min(waits) < 0.1 and max(waits) > 3.9  # it really uses the whole range
    assert policy.backoff(2, lambda: 0.0) == 0.0 and policy.backoff(2, lambda: 1.0) == 4.0


def test_equal_jitter_keeps_at_least_half_the_base() -> None:
    policy = ModelRetry(initial_interval=2.0, jitter="equal")
    rand = random.Random(7).random
    waits = [policy.backoff(2, rand) for _ in range(2000)]
    assert all(2.0 <= w <= 4.0 for w in waits)
    assert min(waits) < 2.1 and max(waits) > 3.9
    assert policy.backoff(1, lambda: 0.0) == 1.0 and policy.backoff(1, lambda: 1.0) == 2.0


async def test_jittered_waits_use_the_injected_random() -> None:
    inner = ScriptedModel([ModelTransientError("a"), ModelTransientError("b"), "ok"])
    sleep = RecordingSleep()
    await RetryingModel(inner, ModelRetry(), sleep=sleep, rand=lambda: 0.25).chat("hi")
    assert sleep.waits == [0.125, 0.25]


async def test_retry_after_is_waited_exactly() -> None:
    inner = ScriptedModel(
        [
            ModelRateLimitedError("429", retry_after=7.5),
            ModelRateLimitedError("429", retry_after=0.0),
            "ok",
        ]
    )
    sleep = RecordingSleep()
    out = await RetryingModel(inner, FIXED, sleep=sleep).chat("hi")
    assert sleep.waits == [7.5, 0.0]  # not the 0.5 / 1.0 backoff
    assert out.metadata["attempts"] == 3


async def test_a_429_without_retry_after_backs_off() -> None:
    inner = ScriptedModel([ModelRateLimitedError("429"), "ok"])
    sleep = RecordingSleep()
    await RetryingModel(inner, FIXED, sleep=sleep).chat("hi")
    assert sleep.waits == [0.5]


async def test_a_retry_after_beyond_the_limit_is_raised_without_waiting() -> None:
    inner = ScriptedModel([ModelRateLimitedError("429", retry_after=120.0), "ok"])
    sleep = RecordingSleep()
    with pytest.raises(ModelRateLimitedError) as caught:
        await RetryingModel(inner, ModelRetry(max_retry_after=60.0), sleep=sleep).chat("hi")
    assert inner.calls == 1 and sleep.waits == []
    assert (
        "Retry-After 120s is longer than ModelRetry.max_retry_after=60s"
        in caught.value.__notes__[0]
    )


async def test_the_default_sleep_really_waits() -> None:
    inner = ScriptedModel([ModelTransientError("500"), "ok"])
    policy = ModelRetry(initial_interval=0.01, jitter=False)
    assert (await RetryingModel(inner, policy).chat("hi")).metadata["attempts"] == 2


async def test_a_stream_that_fails_before_its_first_chunk_is_retried() -> None:
    inner = StepModel([[ModelTransientError("500")], [0.0, ModelTimeoutError("t")], ["hel", "lo"]])
    sleep = RecordingSleep()
    deltas, out = await collect(RetryingModel(inner, FIXED, sleep=sleep))
    assert deltas == ["hel", "lo"] and out.text == "hello"
    assert inner.opened == 3 and inner.closed == 3 and sleep.waits == [0.5, 1.0]
    assert out.metadata["attempts"] == 3


async def test_a_stream_that_fails_after_its_first_chunk_is_not_retried() -> None:
    inner = StepModel([["partial ", ModelTransientError("dropped")], ["never"]])
    sleep = RecordingSleep()
    deltas: list[str] = []
    with pytest.raises(ModelTransientError, match="dropped"):
        await RetryingModel(inner, sleep=sleep).chat("hi", on_token=deltas.append)
    assert deltas == ["partial "]
    assert inner.opened == 1 and sleep.waits == []


async def test_a_stream_that_never_recovers_raises_after_max_attempts() -> None:
    inner = StepModel([[ModelTransientError("500")]])
    with pytest.raises(ModelTransientError):
        await collect(RetryingModel(inner, FIXED, sleep=RecordingSleep()))
    assert inner.opened == 3 and inner.closed == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_interval": -1.0},
        {"max_retry_after": -1.0},
        {"backoff_factor": 0.5},
        {"jitter": "decorrelated"},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ModelRetry(**kwargs)  # type: ignore[arg-type]
