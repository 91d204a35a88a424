"""A deadline on every call: ``ModelTimeoutError`` when the inner model takes too long.

``complete`` gets one deadline for the whole answer. A stream gets two: the time to its first
chunk (``first_chunk_timeout``) and the longest silence between two chunks (``idle_timeout``),
so a long answer that keeps flowing is never cut off, but a stalled one is. Time the consumer
spends between chunks does not count. Both default to ``timeout``.

Put it *inside* a ``RetryingModel`` so each attempt has its own deadline (``resilient()`` does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tether.core.errors import ModelTimeoutError
from tether.core.finite import check_number
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk
from tether.llm.wrappers.base import WrapperModel, aclose


class TimeoutModel(WrapperModel):
    def __init__(
        self,
        inner: Model,
        timeout: float,
        *,
        first_chunk_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__(inner)
        # a NaN timeout never fires and text fails at the first call: refused here, by name
        seconds = " of seconds"
        self.timeout = check_number("TimeoutModel timeout", timeout, above=True, unit=seconds)
        self.first_chunk_timeout = (
            self.timeout
            if first_chunk_timeout is None
            else check_number(
                "TimeoutModel first_chunk_timeout", first_chunk_timeout, above=True, unit=seconds
            )
        )
        self.idle_timeout = (
            self.timeout
            if idle_timeout is None
            else check_number("TimeoutModel idle_timeout", idle_timeout, above=True, unit=seconds)
        )

    def _error(self, what: str, seconds: float) -> ModelTimeoutError:
        return ModelTimeoutError(
            f"{self.inner.name} gave no {what} within {seconds:g}s; raise the timeout if the "
            "model is just slow, or check that the provider is up",
            model=self.inner.name,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        try:
            async with asyncio.timeout(self.timeout):
                return await self.inner.complete(request)
        except TimeoutError as exc:
            raise self._error("answer", self.timeout) from exc

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        chunks = aiter(self.inner.stream(request))
        limit, what = self.first_chunk_timeout, "first chunk"
        try:
            while True:
                try:
                    async with asyncio.timeout(limit):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise self._error(what, limit) from exc
                yield chunk
                limit, what = self.idle_timeout, "next chunk"
        finally:
            await aclose(chunks)
