"""``CachedModel``: a Model that answers from a ``SemanticCache`` before asking its inner model
(what is cached, and when, is in ``tether.llm.cache``; import both from there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tether.core.journal import current_journal
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk

if TYPE_CHECKING:
    from tether.llm.cache import CacheLookup, SemanticCache


class CachedModel(Model):
    """``inner`` behind a SemanticCache (see ``tether.llm.cache``). Calls that lead to write
    tools are neither cached nor served from the cache unless ``allow_write_tools``. An
    identical call already asking the model is waited for, not repeated (single-flight)."""

    def __init__(self, inner: Model, cache: SemanticCache, *, allow_write_tools: bool = False):
        self.inner, self.cache, self.allow_write_tools = inner, cache, allow_write_tools
        self.provider, self.model_name, self.prices = inner.provider, inner.model_name, inner.prices

    @property
    def identity(self) -> str:
        return self.inner.identity

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    @property
    def exact_token_count(self) -> bool:
        return self.inner.exact_token_count

    async def complete(self, request: ModelRequest) -> ModelResponse:
        found = await self._lookup(request)
        if found.response is not None:
            return found.response
        with self.cache.lead(found):
            return await self._keep(found, await self.inner.complete(request))

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        """A hit comes as one text chunk. A miss waits for an identical call in flight, as
        ``complete`` does, but a streamed miss never leads one itself: identical calls that
        arrive while it streams ask the model too. (Its consumer may stop reading at any point,
        and an abandoned stream is only closed when it is garbage-collected, which would leave
        them waiting that long.)"""
        found = await self._lookup(request)
        if found.response is not None:
            if found.response.text:
                yield StreamChunk(delta=found.response.text)
            yield StreamChunk(response=found.response)
            return
        async for chunk in self.inner.stream(request):
            if chunk.response is not None:
                chunk = StreamChunk(
                    delta=chunk.delta, response=await self._keep(found, chunk.response)
                )
            yield chunk

    async def _lookup(self, request: ModelRequest) -> CacheLookup:
        run = current_journal()  # the calling run's tenant keeps its answers apart
        return await self.cache.lookup(
            self.inner.identity,  # a name two servers may share: where it is served too
            request,
            allow_write_tools=self.allow_write_tools,
            tenant=getattr(run, "tenant", None),
        )

    async def _keep(self, found: CacheLookup, response: ModelResponse) -> ModelResponse:
        why = await self.cache.store(found, response, allow_write_tools=self.allow_write_tools)
        note: dict[str, Any] = {"hit": False, "stored": why is None}
        if why is not None:
            note["reason"] = why
        return response.model_copy(update={"metadata": {**response.metadata, "cache": note}})
