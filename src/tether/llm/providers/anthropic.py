"""Anthropic's Messages API (``POST /v1/messages``), over plain HTTP.

System prompts go to the top-level ``system`` field; tools become ``{name, description,
input_schema}``; assistant tool calls are ``tool_use`` blocks and tool results ``tool_result``
blocks in a user turn (consecutive results share one turn). Structured output uses the standard
technique: a tool whose input schema is the wanted schema, which the model is made to call; its
input comes back as the response's JSON text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from tether.core.messages import Message, ToolCall
from tether.llm.providers._http import HttpModel, error_from_body, missing, parse_json
from tether.llm.types import ModelRequest, ModelResponse, ResponseFormat, StreamChunk, Usage

API_VERSION = "2023-06-01"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


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
        body = await self.post_json(self.url, self.payload(request), self.headers)
        if not isinstance(body, dict):
            raise missing(self.name, "a JSON object", body)
        if body.get("type") == "error":
            raise error_from_body(body, model=self.name)
        content = body.get("content")
        if not isinstance(content, list):
            raise missing(self.name, "content", body)
        output = output_tool(request)
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                text.append(str(block.get("text") or ""))
            elif kind == "tool_use":
                if not isinstance(block.get("name"), str) or not isinstance(block.get("id"), str):
                    raise missing(self.name, "a tool_use id and name", block)
                arguments = block.get("input")
                if not isinstance(arguments, dict):
                    arguments = {}
                if output is not None and block["name"] == output:
                    text = [orjson.dumps(arguments).decode()]
                    break
                calls.append(ToolCall(id=block["id"], name=block["name"], arguments=arguments))
        structured = output is not None and not calls and bool(text)
        return ModelResponse(
            text="".join(text),
            tool_calls=tuple(calls),
            finish_reason="stop" if structured else finish(body.get("stop_reason")),
            model=self.name,
            id=body.get("id"),
            usage=usage(body.get("usage")),
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        state = StreamState(self.name, output_tool(request))
        async with self.post_sse(
            self.url, {**self.payload(request), "stream": True}, self.headers
        ) as events:
            async for event in events:
                data = parse_json(event.data, model=self.name, what="stream event")
                if not isinstance(data, dict):
                    raise missing(self.name, "a JSON object in the stream", data)
                if event.event == "error" or data.get("type") == "error":
                    raise error_from_body(data, model=self.name)
                delta = state.add(data)
                if delta:
                    yield StreamChunk(delta=delta)
        yield StreamChunk(response=state.response())

    # -- wire format ----------------------------------------------------------------------
    def payload(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": request.max_tokens or self.max_tokens,
            "messages": messages(request.messages),
        }
        if request.system_prompt:
            body["system"] = request.system_prompt
        tools = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        choice: dict[str, Any] | None = None
        if tools:
            named = request.tool_choice not in ("auto", "none", "required")
            choice = {
                "auto": {"type": "auto"},
                "none": {"type": "none"},
                "required": {"type": "any"},
            }.get(request.tool_choice, {"type": "tool", "name": request.tool_choice})
        fmt = request.response_format
        output = output_tool(request)
        if fmt is not None and output is not None:
            tools.append(
                {"name": output, "description": _OUTPUT_HINT, "input_schema": fmt.json_schema}
            )
            # Alone, the output tool is forced; beside real tools the model picks one of them.
            if not request.tools or request.tool_choice == "none":
                choice = {"type": "tool", "name": output}
            elif not named:
                choice = {"type": "any"}
        if tools:
            body["tools"] = tools
            body["tool_choice"] = choice
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        return body


_OUTPUT_HINT = "Give the final answer as this tool's input, matching its schema exactly."


def output_tool(request: ModelRequest) -> str | None:
    """Name of the tool that carries structured output (None without a response format)."""
    fmt: ResponseFormat | None = request.response_format
    if fmt is None or fmt.json_schema.get("type", "object") != "object":
        return None
    base = re.sub(r"[^A-Za-z0-9_-]", "_", fmt.name)[:60] or "output"
    taken = {t.name for t in request.tools}
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def messages(history: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Chat turns as Messages API turns (system messages left out: they go to ``system``)."""
    out: list[dict[str, Any]] = []
    for m in history:
        if m.role == "system":
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks: list[dict[str, Any]] = []
        if m.role == "tool":
            blocks.append(
                {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            )
        elif m.content:
            blocks.append({"type": "text", "text": m.content})
        blocks.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in m.tool_calls
        )
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)  # one turn per role, as the API wants
        else:
            out.append({"role": role, "content": blocks})
    return out


def finish(reason: Any) -> str:
    return FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"


_INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=sum(int(raw.get(k) or 0) for k in _INPUT_KEYS),
        output_tokens=int(raw.get("output_tokens") or 0),
    )


class StreamState:
    """Assembles a streamed Messages API answer from its events: ``message_start`` (id, input
    tokens), ``content_block_start``/``content_block_delta`` (text, tool-input JSON pieces),
    ``message_delta`` (stop reason, output tokens). ``ping`` and ``*_stop`` carry nothing new."""

    def __init__(self, model: str, output: str | None) -> None:
        self.model = model
        self.output = output
        self.id: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop_reason: Any = None
        self.blocks: dict[int, dict[str, Any]] = {}

    def add(self, event: dict[str, Any]) -> str:
        """Take one event; return the text it adds to the answer ("" when none)."""
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            message = event["message"]
            self.id = message.get("id")
            self.input_tokens = usage(message.get("usage")).input_tokens
            self.output_tokens = usage(message.get("usage")).output_tokens
        elif kind == "content_block_start":
            block = event.get("content_block")
            if not isinstance(block, dict):
                raise missing(self.model, "content_block in content_block_start", event)
            self.blocks[int(event.get("index", len(self.blocks)))] = {**block, "parts": []}
            text = block.get("text") if block.get("type") == "text" else None
            return self._append(int(event.get("index", 0)), text or "")
        elif kind == "content_block_delta":
            delta = event.get("delta")
            if not isinstance(delta, dict):
                raise missing(self.model, "delta in content_block_delta", event)
            piece = delta.get("text") if delta.get("type") == "text_delta" else None
            if delta.get("type") == "input_json_delta":
                piece = delta.get("partial_json")
            return self._append(int(event.get("index", 0)), str(piece or ""))
        elif kind == "message_delta":
            self.stop_reason = (event.get("delta") or {}).get("stop_reason") or self.stop_reason
            if isinstance(event.get("usage"), dict):
                self.output_tokens = int(event["usage"].get("output_tokens") or 0)
        return ""

    def _append(self, index: int, piece: str) -> str:
        block = self.blocks.get(index)
        if block is None:
            raise missing(
                self.model, f"a content_block_start before the deltas of block {index}", None
            )
        if piece:
            block["parts"].append(piece)
        shown = block["type"] == "text" or block.get("name") == self.output
        return piece if shown else ""

    def response(self) -> ModelResponse:
        text: list[str] = []
        calls: list[ToolCall] = []
        structured = False
        for _, block in sorted(self.blocks.items()):
            joined = "".join(block["parts"])
            if block["type"] == "text":
                text.append(joined)
            elif block["type"] == "tool_use" and block.get("name") == self.output:
                text, structured = [joined], True
                break
            elif block["type"] == "tool_use":
                calls.append(self._call(block, joined))
        return ModelResponse(
            text="".join(text),
            tool_calls=tuple(calls),
            finish_reason="stop" if structured and not calls else finish(self.stop_reason),
            model=self.model,
            id=self.id,
            usage=Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens),
        )

    def _call(self, block: dict[str, Any], joined: str) -> ToolCall:
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise missing(self.model, "a tool_use id and name", block)
        if not joined.strip() and isinstance(block.get("input"), dict):
            return ToolCall(id=block["id"], name=block["name"], arguments=block["input"])
        try:
            arguments = orjson.loads(joined)
        except orjson.JSONDecodeError:
            arguments = None
        if isinstance(arguments, dict):
            return ToolCall(id=block["id"], name=block["name"], arguments=arguments)
        return ToolCall(id=block["id"], name=block["name"], arguments={}, raw_arguments=joined)
