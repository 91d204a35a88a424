"""A 503 (or another transient status) whose ``Retry-After`` says when the server will take
calls again is retried after that wait, not on the quick backoff; one longer than
``max_retry_after`` is raised at once, as a 429's is.

Before, only a 429's ``Retry-After`` was read: a 503 saying ``Retry-After: 2`` was asked again
after 0.5 s and 1 s, failing both times, and the call gave up two seconds before the server was
back; one saying ``Retry-After: 36000`` (down for ten hours) was hammered max_attempts times."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tether.core.errors import ModelTransientError
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.wrappers import FallbackModel, ModelRetry, RetryingModel

from .flaky_server import FlakyServer, Reply, ok
from .helpers import RecordingSleep

QUICK = ModelRetry(initial_interval=0.01, jitter=False)


def unavailable(retry_after: str, status: int = 503) -> Reply:
    error = {"error": {"message": "The engine is currently overloaded", "type": "server_error"}}
    return Reply(status, body=json.dumps(error).encode(), headers={"retry-after": retry_after})


@pytest.fixture
async def provider(server: FlakyServer) -> AsyncIterator[OpenAICompatibleModel]:
    model = OpenAICompatibleModel("busy-1", base_url=server.base_url)
    yield model
    await model.aclose()


@pytest.mark.parametrize("status", [503, 529, 500])
async def test_a_transient_error_is_retried_after_its_retry_after(
    server: FlakyServer, provider: OpenAICompatibleModel, status: int
) -> None:
    server.push(unavailable("2", status), ok("back"))
    sleep = RecordingSleep()
    out = await RetryingModel(provider, QUICK, sleep=sleep).chat("hi")
    assert out.text == "back" and server.count == 2
    assert sleep.waits == [2.0]  # the server's word, not the 0.01 s backoff


async def test_a_retry_after_given_as_an_http_date_is_waited(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    server.push(unavailable(format_datetime(when, usegmt=True)), ok("back"))
    sleep = RecordingSleep()
    await RetryingModel(provider, QUICK, sleep=sleep).chat("hi")
    (waited,) = sleep.waits
    assert 20 < waited <= 30


async def test_a_503_down_for_hours_is_raised_at_once_and_says_why(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.then = unavailable("36000")
    sleep = RecordingSleep()
    with pytest.raises(ModelTransientError, match="HTTP 503") as caught:
        await RetryingModel(provider, QUICK, sleep=sleep).chat("hi")
    assert caught.value.retry_after == 36000
    assert server.count == 1 and sleep.waits == []
    assert any("Retry-After 36000s" in note for note in caught.value.__notes__)


async def test_a_fallback_chain_moves_on_from_a_503_down_for_hours(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    async with FlakyServer(then=ok("from the backup")) as backup_server:
        backup = OpenAICompatibleModel("backup", base_url=backup_server.base_url)
        server.then = unavailable("36000")
        sleep = RecordingSleep()
        chain = FallbackModel([RetryingModel(provider, QUICK, sleep=sleep), backup])
        out = await chain.chat("hi")
        await backup.aclose()
    assert out.text == "from the backup" and server.count == 1 and sleep.waits == []


async def test_a_503_without_retry_after_keeps_the_backoff(
    server: FlakyServer, provider: OpenAICompatibleModel
) -> None:
    server.push(unavailable(""), ok("back"))
    sleep = RecordingSleep()
    await RetryingModel(provider, QUICK, sleep=sleep).chat("hi")
    assert sleep.waits == [0.01]
