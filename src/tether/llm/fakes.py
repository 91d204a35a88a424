"""Deterministic models for tests: public API, so users can test their agents without a model.

``ScriptedModel`` replays a list of answers in order (text, tool calls, whole responses, or
exceptions to raise); ``FunctionModel`` lets a function decide each answer from the request.
Both record every request they were sent (``requests``) and count calls (``calls``).
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson

from tether.core.errors import ConfigurationError, ModelError
from tether.core.listed import listed
from tether.core.messages import ToolCall
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk

Reply = str | ModelResponse | ToolCall | list[ToolCall] | Mapping[str, Any] | BaseException
"""A scripted answer: text; a response; one or more tool calls; a dict (structured output,
sent as JSON text); or an exception instance, which the call raises."""

_ids = itertools.count(1)


def tool_call(
    name: str, arguments: Mapping[str, Any] | None = None, id: str | None = None
) -> ToolCall:
    """A tool call for scripts: ``tool_call("search", {"q": "tether"})``."""
    return ToolCall(id=id or f"call_{next(_ids)}", name=name, arguments=dict(arguments or {}))


def as_response(reply: Reply, model: str) -> ModelResponse:
    if isinstance(reply, BaseException):
        raise reply
    if isinstance(reply, ModelResponse):
        return reply if reply.model else reply.model_copy(update={"model": model})
    if isinstance(reply, str):
        return ModelResponse(text=reply, model=model)
    if isinstance(reply, ToolCall):
        reply = [reply]
    if isinstance(reply, list):
        if not all(isinstance(c, ToolCall) for c in reply):
            raise ConfigurationError("a scripted list reply must hold only ToolCall objects")
        return ModelResponse(tool_calls=tuple(reply), finish_reason="tool_calls", model=model)
    if isinstance(reply, Mapping):
        return ModelResponse(text=orjson.dumps(dict(reply)).decode(), model=model)
    raise ConfigurationError(f"cannot use {type(reply).__name__} as a scripted model reply")


class _Recording(Model):
    def __init__(self, name: str, stream_chunk: int) -> None:
        self.model_name = name
        self.requests: list[ModelRequest] = []
        self.stream_chunk = stream_chunk

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        response = await self.complete(request)
        text, size = response.text, max(1, self.stream_chunk)
        for i in range(0, len(text), size):
            yield StreamChunk(delta=text[i : i + size])
        yield StreamChunk(response=response)


class ScriptedModel(_Recording):
    """Replays ``replies`` in order; raises ModelError when the script runs out (or cycles
    through it again with ``cycle=True``). Streams its text in ``stream_chunk``-character
    pieces."""

    provider = "scripted"

    def __init__(
        self,
        replies: Iterable[Reply],
        *,
        name: str = "scripted",
        cycle: bool = False,
        stream_chunk: int = 4,
    ) -> None:
        super().__init__(name, stream_chunk)
        self.replies = listed("ScriptedModel(replies)", replies, "ScriptedModel(['the reply'])")
        self.cycle = cycle
        self._next = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if self._next >= len(self.replies):
            if not self.cycle or not self.replies:
                raise ModelError(
                    f"scripted model {self.model_name!r} has no reply left: it was given "
                    f"{len(self.replies)} and this is call {len(self.requests)}",
                    model=self.name,
                )
            self._next = 0
        reply = self.replies[self._next]
        self._next += 1
        return as_response(reply, self.name)


ReplyFunction = Callable[[ModelRequest], Reply | Awaitable[Reply]]


class FunctionModel(_Recording):
    """``fn(request)`` (sync or async) returns each reply, in any form ScriptedModel takes."""

    provider = "function"

    def __init__(self, fn: ReplyFunction, *, name: str | None = None, stream_chunk: int = 4):
        super().__init__(name or str(getattr(fn, "__name__", "function")), stream_chunk)
        self.fn = fn

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        reply = self.fn(request)
        if inspect.isawaitable(reply):
            reply = await reply
        return as_response(reply, self.name)
