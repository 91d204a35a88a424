"""The resilience wrappers around the real OpenAI-compatible provider, against a real local HTTP
server (``FlakyServer``) that answers 429 with Retry-After, 500s, slow and malformed replies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tether.core.breaker import BreakerPolicy, BreakerState
from tether.core.errors import (
    ModelCircuitOpenError,
    ModelRateLimitedError,
    ModelResponseError,
    ModelTimeoutError,
    ModelTransientError,
)
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.wrappers import (
    BreakerModel,
    FallbackModel,
    ModelRetry,
    RetryingModel,
    TimeoutModel,
    model_breaker,
    resilient,
)
from tether.testing import FakeClock

from .flaky_server import FlakyServer, malformed, ok, rate_limited, server_error, slow
from .helpers import RecordingSleep, collect

QUICK = ModelRetry(initial_interval=0.01, jitter=False)


@pytest.fixture
async def provider(server: FlakyServer) -> AsyncIterator[OpenAICompatibleModel]:
    model = OpenAICompatibleModel("flaky-1", base_url=server.base_url, api_key=None)
    yield model
    await model.aclose()


async def test_a_429_is_retried_after_waiting_its_retry_after(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(rate_limited(1), ok("finally"))
    out = await RetryingModel(provider, QUICK).chat("hi")
    assert out.text == "finally" and out.metadata["attempts"] == 2
    assert server.count == 2
    assert server.arrivals[1] - server.arrivals[0] >= 1.0  # not the 0.01 s backoff


async def test_a_retry_after_beyond_the_limit_is_not_waited(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(rate_limited(3600))
    sleep = RecordingSleep()
    with pytest.raises(ModelRateLimitedError) as caught:
        await RetryingModel(provider, QUICK, sleep=sleep).chat("hi")
    assert caught.value.retry_after == 3600 and server.count == 1
    assert sleep.waits == []  # raised at once, not after an hour


async def test_500s_are_retried_until_the_server_answers(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(server_error(500), server_error(503), ok("up again"))
    out = await RetryingModel(provider, QUICK).chat("hi")
    assert out.text == "up again" and out.metadata["attempts"] == 3 and server.count == 3
    assert out.usage.input_tokens == 5 and not out.usage.estimated


async def test_500s_past_max_attempts_raise(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.then = server_error(502)
    with pytest.raises(ModelTransientError, match="HTTP 502"):
        await RetryingModel(provider, QUICK).chat("hi")
    assert server.count == 3


async def test_malformed_json_is_retried(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(malformed(), ok("clean"))
    out = await RetryingModel(provider, QUICK).chat("hi")
    assert out.text == "clean" and server.count == 2
    server.push(malformed())
    with pytest.raises(ModelResponseError, match="not JSON"):
        await RetryingModel(provider, ModelRetry(max_attempts=1)).chat("hi")


async def test_a_slow_answer_times_out(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(slow(5.0))
    with pytest.raises(ModelTimeoutError, match=r"gave no answer within 0\.3s"):
        await TimeoutModel(provider, 0.3).chat("hi")
    assert server.count == 1


async def test_a_timed_out_attempt_is_retried_with_a_fresh_deadline(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(slow(5.0), slow(0.05, "in time"))
    model = resilient(provider, timeout=0.3, retry=QUICK, breaker=None)
    out = await model.chat("hi")
    assert out.text == "in time" and out.metadata["attempts"] == 2 and server.count == 2


async def test_the_breaker_opens_refuses_without_calling_and_closes_on_recovery(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    clock = FakeClock()
    policy = BreakerPolicy(failure_threshold=2, reset_timeout=10.0)
    model = BreakerModel(
        RetryingModel(provider, ModelRetry(max_attempts=2, initial_interval=0.01)),
        breaker=model_breaker("flaky", policy, clock),
    )
    server.then = server_error(500)
    for _ in range(2):
        with pytest.raises(ModelTransientError):
            await model.chat("hi")
    assert model.breaker.state is BreakerState.OPEN and server.count == 4  # 2 calls x 2 attempts

    for _ in range(3):
        with pytest.raises(ModelCircuitOpenError):
            await model.chat("hi")
    assert server.count == 4  # refused without touching the server

    clock.advance(10.0)
    with pytest.raises(ModelTransientError):  # the half-open trial: still down
        await model.chat("hi")
    assert model.breaker.state is BreakerState.OPEN and server.count == 6

    server.then = ok("recovered")
    clock.advance(10.0)
    out = await model.chat("hi")  # the trial succeeds
    assert out.text == "recovered" and server.count == 7
    assert model.breaker.state is BreakerState.CLOSED
    assert (await model.chat("hi")).text == "recovered" and server.count == 8


async def test_a_fallback_server_answers_and_the_open_breaker_skips_the_dead_one(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.then = server_error(503)
    async with FlakyServer(then=ok("from the backup")) as backup_server:
        backup = OpenAICompatibleModel("backup-1", base_url=backup_server.base_url)
        model = resilient(
            provider,
            fallbacks=[backup],
            timeout=5.0,
            retry=ModelRetry(max_attempts=2, initial_interval=0.01),
            breaker=BreakerPolicy(failure_threshold=1, reset_timeout=60.0),
        )
        assert isinstance(model, FallbackModel)
        out = await model.chat("hi")
        assert out.text == "from the backup" and out.model == "openai-compatible:backup-1"
        assert out.metadata["fallback"]["used"] == "openai-compatible:backup-1"
        assert "HTTP 503" in out.metadata["fallback"]["skipped"][0]["error"]
        assert server.count == 2 and backup_server.count == 1

        out = await model.chat("hi")  # the primary's breaker is open now: not even tried
        assert out.text == "from the backup" and server.count == 2 and backup_server.count == 2
        assert out.metadata["fallback"]["skipped"][0]["error"].startswith("ModelCircuitOpenError")
        await backup.aclose()


async def test_a_stream_is_retried_before_its_first_chunk(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(server_error(500), ok("streamed after all"))
    deltas, out = await collect(RetryingModel(provider, QUICK))
    assert "".join(deltas) == "streamed after all" == out.text
    assert len(deltas) == 3 and server.count == 2 and out.metadata["attempts"] == 2
    assert all(r.get("stream") for r in server.requests)


async def test_a_stream_that_does_not_start_in_time_times_out_and_is_retried(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(slow(5.0), ok("second try"))
    model = RetryingModel(TimeoutModel(provider, 0.3), QUICK)
    _deltas, out = await collect(model)
    assert out.text == "second try" and server.count == 2
