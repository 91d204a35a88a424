"""Anthropic's Messages API (``POST /v1/messages``), over plain HTTP.

The wire format (system prompt, tool use and results, structured output through a forced tool)
is in :mod:`.anthropic_wire`, reading a stream in :mod:`.anthropic_stream`; errors map onto the
ModelError tree (:mod:`.http_errors`). A streamed request answered with one JSON message (a
gateway that cannot stream) is that answer: one text delta, then the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from tether.core.errors import ConfigurationError
from tether.llm.providers._http import HttpModel, WholeBody
from tether.llm.providers.anthropic_stream import StreamState
from tether.llm.providers.anthropic_wire import output_tool, read_message, request_body
from tether.llm.providers.http_errors import parse_json
from tether.llm.providers.tool_names import WireNames
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk

API_VERSION = "2023-06-01"


class AnthropicModel(HttpModel):
    """A Claude model. ``max_tokens`` is the answer length when a request sets none (the API
    requires one); ``timeout`` (seconds) applies to each request."""

    provider = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str = "https://api.anthropic.com",
        timeout: float = 60.0,
        client: httpx.AsyncClient | None = None,
        max_tokens: int = 1024,
    ) -> None:
        if max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be at least 1, got {max_tokens}")
        super().__init__(timeout=timeout, client=client)
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.max_tokens = max_tokens
        self.headers = {
            "content-type": "application/json",
            "x-api-key": api_key,
            "anthropic-version": API_VERSION,
        }

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        names = WireNames.of(request)
        sent = request if names is None else names.outbound(request)
        output = output_tool(sent)
        body = await self.post_json(self.url, self.payload(sent, output), self.headers)
        response = read_message(body, self.name, output)
        return response if names is None else names.inbound(response)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        names = WireNames.of(request)
        sent = request if names is None else names.outbound(request)
        output = output_tool(sent)
        state = StreamState(self.name, output)
        payload = {**self.payload(sent, output), "stream": True}
        async with self.post_sse(self.url, payload, self.headers) as events:
            if isinstance(events, WholeBody):  # one JSON message, not events: the whole answer
                whole = read_message(events.body, self.name, output)
                if whole.text:
                    yield StreamChunk(delta=whole.text)
                yield StreamChunk(response=whole if names is None else names.inbound(whole))
                return
            async for event in events:
                data = parse_json(event.data, model=self.name, what="stream event")
                delta = state.add(event.event, data)
                called = state.take_called()
                if delta or called:
                    yield StreamChunk(delta=delta, tool_delta=called)
        response = state.response()
        yield StreamChunk(response=response if names is None else names.inbound(response))

    def payload(self, request: ModelRequest, output: str | None) -> dict[str, Any]:
        """The JSON body for ``request``; ``output`` names its structured-output tool."""
        return request_body(request, self.model_name, max_tokens=self.max_tokens, output=output)
