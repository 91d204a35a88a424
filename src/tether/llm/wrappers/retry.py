"""Retry failed model calls with jittered exponential backoff, honouring ``Retry-After``.

Only errors whose class says trying again can help are retried (``ModelError.retryable``):
timeouts, transient failures (5xx, dropped connections), malformed answers and rate limits.
A refused request (``ModelRequestError``: bad key, unknown model) is raised at once.

The waits are ``tether.core.backoff.Backoff``'s, the same rule the graph's ``RetryPolicy`` and
the tool plane's ``ToolRetry`` use: attempt *n* failed → ``min(max_interval, initial_interval *
backoff_factor**(n-1))``, jittered: ``"full"`` (the default, ``jitter=True``) waits a uniform
time in ``[0, base]``, ``"equal"`` in ``[base/2, base]``, ``jitter=False`` exactly ``base``. A
429 or a 503 that says ``Retry-After: s`` waits exactly ``s`` seconds instead (the provider
knows when it will take the call), unless ``s > max_retry_after``: then the error is raised at
once, since waiting that long is worse than failing over. The response records how many
attempts it took in ``metadata["attempts"]``; an error raised after retries carries a note
saying why it gave up.

A stream is retried only until its first chunk arrives: once text has reached the caller, an
error propagates (retrying would repeat text the caller has already seen).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tether.core.backoff import Backoff, Jitter, Random
from tether.core.errors import ModelError, ModelRateLimitedError, ModelTransientError
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage, plus
from tether.llm.wrappers.base import (
    WrapperModel,
    aclose,
    add_wasted,
    noted,
    noted_chunk,
    open_stream,
    spent_by,
    spent_chunk,
    with_spent,
)

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ModelRetry:
    """How often and how patiently to retry; see the module docs for the wait formula."""

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 20.0
    jitter: Jitter = True
    max_retry_after: float = 60.0
    """A ``Retry-After`` longer than this is not waited out: the 429 is raised instead."""
    schedule: Backoff = field(init=False, repr=False, compare=False)
    """The waits, computed by the one backoff rule every plane shares."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", Backoff.of(self, "ModelRetry"))

    def backoff(self, attempt: int, rand: Random = random.random) -> float:
        """The wait after failed attempt ``attempt`` (1-based), jittered."""
        return self.schedule.backoff(attempt, rand)

    def retry_delay(
        self, exc: BaseException, attempt: int, rand: Random = random.random
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up and raise."""
        if not isinstance(exc, ModelError) or not exc.retryable:
            return None
        return self.schedule.delay(attempt, _retry_after(exc), rand)


def _retry_after(exc: BaseException) -> float | None:
    """The wait the server asked for: a 429's or a 503's ``Retry-After``."""
    if isinstance(exc, ModelRateLimitedError | ModelTransientError):
        return exc.retry_after
    return None


NO_MODEL_RETRY = ModelRetry(max_attempts=1)


class RetryingModel(WrapperModel):
    """Retries ``inner`` per ``policy``; ``sleep`` and ``rand`` are injectable for tests."""

    def __init__(
        self,
        inner: Model,
        policy: ModelRetry = ModelRetry(),
        *,
        sleep: Sleep = asyncio.sleep,
        rand: Random = random.random,
    ) -> None:
        super().__init__(inner)
        self.policy = policy
        self._sleep = sleep
        self._rand = rand

    async def _after_failure(self, exc: ModelError, attempt: int) -> None:
        """Wait before the next attempt, or re-raise ``exc`` when the policy gives up."""
        delay = self.policy.retry_delay(exc, attempt, self._rand)
        if delay is None:
            self.policy.schedule.note_give_up(
                exc, attempt, _retry_after(exc), who=f"model {self.inner.name!r}"
            )
            raise exc
        await self._sleep(delay)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        attempt = 1
        wasted: Usage | None = None  # answers received and refused: billed all the same
        while True:
            try:
                response = await self.inner.complete(request)
            except ModelError as exc:
                wasted = plus(wasted, spent_by(exc))
                exc.usage = wasted  # a call that gives up is charged every refused answer
                await self._after_failure(exc, attempt)
                attempt += 1
                continue
            return noted(with_spent(self, request, response, wasted), "attempts", attempt)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        attempt = 1
        wasted: Usage | None = None  # attempts that failed after billing (a cut tool call)
        while True:
            try:
                opened = await open_stream(self.inner, request)
            except ModelError as exc:
                wasted = plus(wasted, spent_by(exc))
                exc.usage = wasted
                await self._after_failure(exc, attempt)
                attempt += 1
                continue
            break
        if opened is None:
            return
        first, chunks = opened
        try:
            for chunk in first:
                yield noted_chunk(spent_chunk(self, request, chunk, wasted), "attempts", attempt)
            async for chunk in chunks:
                yield noted_chunk(spent_chunk(self, request, chunk, wasted), "attempts", attempt)
        except ModelError as exc:  # cut after its text: charged the attempts before it too
            add_wasted(exc, wasted)
            raise
        finally:
            await aclose(chunks)
