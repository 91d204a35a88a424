"""Any OpenAI-compatible chat completions endpoint: OpenAI, vLLM, llama.cpp's server, Ollama.

``complete`` POSTs ``{base_url}/chat/completions``; ``stream`` reads the same endpoint as
Server-Sent Events. Tool calls, ``tool_choice``, JSON-schema output, seeds, stop sequences and
log-probabilities are translated both ways (:mod:`.openai_wire`, :mod:`.openai_stream`); errors
map onto the ModelError tree (:mod:`.http_errors`). A forced tool call (``tool_choice`` required
or a tool's name) answered without one raises ModelResponseError. A stream whose server reports
no usage is counted (:mod:`.prompt_tokens`) and marked ``estimated``. A streamed request the
server answers with one JSON completion (it cannot stream) is that answer: one text delta, then
the end, its usage as reported (counted when none).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from tether.core.errors import ModelError
from tether.llm.providers._http import HttpModel, WholeBody
from tether.llm.providers.http_errors import parse_json
from tether.llm.providers.openai_stream import Accumulator
from tether.llm.providers.openai_wire import read_completion, request_body
from tether.llm.providers.prompt_tokens import PromptCounter, PromptTokenizer
from tether.llm.providers.tool_names import WireNames
from tether.llm.providers.wire import check_tool_choice
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage


class OpenAICompatibleModel(HttpModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``timeout`` (seconds) applies to each request, also when a ``client`` is given; the
    client is closed by ``aclose()`` (or ``async with``) only when the model created it.
    ``tokenizer`` (e.g. ``LocalModel(path=...)`` on the GGUF file the server runs) counts
    tokens exactly when the server reports none (see :mod:`.prompt_tokens`).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        provider: str = "openai-compatible",
        timeout: float = 60.0,
        client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        tokenizer: PromptTokenizer | None = None,
    ) -> None:
        super().__init__(timeout=timeout, client=client)
        self.tokenizer = tokenizer
        self.provider = provider
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.headers = {"content-type": "application/json", **dict(headers or {})}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        # set once the server has refused OpenAI's json_schema response format and taken
        # llama-cpp-python's json_object with a schema instead
        self._json_object_schema = False
        self._prompt_counter = PromptCounter(self.base_url, model, tokenizer)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        json_object = self._json_object_schema
        names = WireNames.of(request)
        sent = request if names is None else names.outbound(request)
        try:
            body = await self.post_json(self.url, self.payload(sent, json_object), self.headers)
        except ModelError as exc:
            if json_object or not self._schema_format_refused(request, exc):
                raise
            json_object = True
            body = await self.post_json(self.url, self.payload(sent, True), self.headers)
        response = read_completion(body, self.name)
        if names is not None:
            response = names.inbound(response)
        self._json_object_schema |= json_object
        check_tool_choice(request, response, self.name)
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        acc = Accumulator(self.name)
        json_object = self._json_object_schema
        names = WireNames.of(request)
        sent = request if names is None else names.outbound(request)
        whole: ModelResponse | None = None  # a server that answered with one JSON completion
        while True:
            payload = {
                **self.payload(sent, json_object),
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            try:
                async with self.post_sse(self.url, payload, self.headers) as events:
                    if isinstance(events, WholeBody):
                        whole = read_completion(events.body, self.name)
                        break
                    async for event in events:
                        delta = acc.add(
                            parse_json(event.data, model=self.name, what="stream event")
                        )
                        called = acc.take_called()
                        if delta or called:
                            yield StreamChunk(delta=delta, tool_delta=called)
                    acc.check_ended(events.done)
                break
            except ModelError as exc:
                if json_object or acc.started or not self._schema_format_refused(request, exc):
                    raise
                json_object = True
        self._json_object_schema |= json_object
        response = acc.response() if whole is None else whole
        if names is not None:
            response = names.inbound(response)
        check_tool_choice(request, response, self.name)
        if whole is not None:  # paid for as a whole: delivered as one delta, then the end
            if response.text:
                yield StreamChunk(delta=response.text)
        elif response.usage.total_tokens == 0:  # the server sent no usage: count it
            response = response.model_copy(update={"usage": await self._counted(request, acc)})
        yield StreamChunk(response=response)

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return self.tokenizer.count_tokens(text)
        return super().count_tokens(text)

    @property
    def exact_token_count(self) -> bool:
        return self.tokenizer is not None

    async def _counted(self, request: ModelRequest, acc: Accumulator) -> Usage:
        """Usage of a stream that reported none: the prompt as :class:`PromptCounter` counts
        it, the answer one token per streamed piece."""
        text = "".join(acc.text)
        output = acc.pieces
        if not output and text:
            output = await asyncio.to_thread(self.count_tokens, text)
        prompt = await self._prompt_counter.count(request, self.client, self.headers)
        return Usage(input_tokens=prompt, output_tokens=output, estimated=True)

    def payload(self, request: ModelRequest, json_object: bool = False) -> dict[str, Any]:
        """The JSON body for ``request`` (for ``json_object`` see ``openai_wire.request_body``)."""
        max_tokens_key = "max_completion_tokens" if self.provider == "openai" else "max_tokens"
        return request_body(
            request, self.model_name, max_tokens_key=max_tokens_key, json_object=json_object
        )

    def _schema_format_refused(self, request: ModelRequest, exc: ModelError) -> bool:
        """Whether the server refused OpenAI's ``json_schema`` response format. llama-cpp-python's
        server does (it wants ``{"type": "json_object", "schema": ...}`` and answers 500 to
        anything else): the request is then sent again in that form, and the model keeps to it
        once it worked. OpenAI itself supports ``json_schema``, so a refusal from it is about the
        schema and is raised as it is."""
        return (
            request.response_format is not None
            and self.provider != "openai"
            and exc.status in (400, 422, 500)
            and "response_format" in str(exc)
        )
