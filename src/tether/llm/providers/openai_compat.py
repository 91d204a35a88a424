"""Any OpenAI-compatible chat completions endpoint: OpenAI, vLLM, llama.cpp's server, Ollama.

``complete`` POSTs ``{base_url}/chat/completions``; ``stream`` reads the same endpoint as
Server-Sent Events. Tool calls, ``tool_choice``, JSON-schema output, seeds, stop sequences and
log-probabilities are translated both ways; errors map onto the ModelError tree (see _http).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from tether.core.errors import ModelError, ModelResponseError
from tether.core.messages import Message, ToolCall
from tether.llm.providers._http import HttpModel, error_from_body, missing, parse_json
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage

_FINISH = {"function_call": "tool_calls", None: "stop"}


class OpenAICompatibleModel(HttpModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``timeout`` (seconds) applies to each request, also when a ``client`` is given; the
    client is closed by ``aclose()`` (or ``async with``) only when the model created it.
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
    ) -> None:
        super().__init__(timeout=timeout, client=client)
        self.provider = provider
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.headers = {"content-type": "application/json", **dict(headers or {})}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self._json_object_schema = False

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        try:
            body = await self.post_json(self.url, self.payload(request), self.headers)
        except ModelError as exc:
            if not self._schema_format_refused(request, exc):
                raise
            body = await self.post_json(self.url, self.payload(request), self.headers)
        if not isinstance(body, dict):
            raise missing(self.name, "a JSON object", body)
        if "error" in body and "choices" not in body:
            raise error_from_body(body, model=self.name)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise missing(self.name, "choices", body)
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise missing(self.name, "choices[0].message", body)
        calls = tuple(self._tool_call(i, c) for i, c in enumerate(message.get("tool_calls") or ()))
        return ModelResponse(
            text=message.get("content") or "",
            tool_calls=calls,
            finish_reason=_finish(choices[0].get("finish_reason"), calls),
            model=self.name,
            id=body.get("id"),
            usage=_usage(body.get("usage")),
            logprobs=_logprobs(choices[0].get("logprobs")),
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        acc = _Accumulator()
        for attempt in (1, 2):
            payload = {**self.payload(request), "stream": True}
            payload["stream_options"] = {"include_usage": True}
            try:
                async with self.post_sse(self.url, payload, self.headers) as events:
                    async for event in events:
                        chunk = parse_json(event.data, model=self.name, what="stream event")
                        if not isinstance(chunk, dict):
                            raise missing(self.name, "a JSON object in the stream", chunk)
                        if "error" in chunk:
                            raise error_from_body(chunk, model=self.name)
                        delta = acc.add(chunk)
                        if delta:
                            yield StreamChunk(delta=delta)
                break
            except ModelError as exc:
                if attempt == 2 or acc.started or not self._schema_format_refused(request, exc):
                    raise
        calls = tuple(self._tool_call(i, c) for i, c in enumerate(acc.calls()))
        yield StreamChunk(
            response=ModelResponse(
                text="".join(acc.text),
                tool_calls=calls,
                finish_reason=_finish(acc.finish_reason, calls),
                model=self.name,
                id=acc.id,
                usage=acc.usage,
                logprobs=tuple(acc.logprobs) if acc.logprobs else None,
            )
        )

    # -- wire format ----------------------------------------------------------------------
    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for ``request``."""
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [_message(m) for m in request.messages],
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
            choice = request.tool_choice
            body["tool_choice"] = (
                choice
                if choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": choice}}
            )
        fmt = request.response_format
        if fmt is not None and self._json_object_schema:
            body["response_format"] = {"type": "json_object", "schema": fmt.json_schema}
        elif fmt is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": fmt.name, "schema": fmt.json_schema, "strict": fmt.strict},
            }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            key = "max_completion_tokens" if self.provider == "openai" else "max_tokens"
            body[key] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 0  # llama-cpp-python returns none without it
        return body

    def _schema_format_refused(self, request: ModelRequest, exc: ModelError) -> bool:
        """The server refused OpenAI's ``json_schema`` response format. llama-cpp-python's
        server does (it wants ``{"type": "json_object", "schema": ...}``, and answers 500 to
        anything else); switch this model to that form, once, and say to try again."""
        if request.response_format is None or self._json_object_schema:
            return False
        if exc.status not in (400, 422, 500) or "response_format" not in str(exc):
            return False
        self._json_object_schema = True
        return True

    def _tool_call(self, index: int, raw: Any) -> ToolCall:
        if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
            raise missing(self.name, f"a function in tool call {index}", raw)
        function = raw["function"]
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise missing(self.name, f"a name in tool call {index}", raw)
        call_id = raw.get("id") or f"call_{index}"
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # some servers (Ollama) send an object
            return ToolCall(id=call_id, name=name, arguments=arguments)
        text = arguments if isinstance(arguments, str) else ""
        try:
            parsed = orjson.loads(text) if text.strip() else {}
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return ToolCall(id=call_id, name=name, arguments=parsed)
        return ToolCall(id=call_id, name=name, arguments={}, raw_arguments=text)


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": (
                        c.raw_arguments
                        if c.raw_arguments is not None and not c.arguments
                        else orjson.dumps(c.arguments).decode()
                    ),
                },
            }
            for c in m.tool_calls
        ]
    return out


def _finish(reason: Any, calls: tuple[ToolCall, ...]) -> str:
    finish = _FINISH.get(reason, reason) if reason is None or isinstance(reason, str) else "stop"
    return "tool_calls" if calls and finish == "stop" else str(finish)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
    )


def _logprobs(raw: Any) -> tuple[float, ...] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("content"), list):
        return None
    return tuple(float(t["logprob"]) for t in raw["content"] if isinstance(t, dict))


class _Accumulator:
    """Assembles the pieces of a streamed answer: text, tool-call deltas by index, usage."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.id: str | None = None
        self.logprobs: list[float] = []

    @property
    def started(self) -> bool:
        return bool(self.text or self.tools)

    def add(self, chunk: dict[str, Any]) -> str:
        self.id = self.id or chunk.get("id")
        if isinstance(chunk.get("usage"), dict):
            self.usage = _usage(chunk["usage"])
        choices = chunk.get("choices") or ()
        if not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.logprobs.extend(_logprobs(choice.get("logprobs")) or ())
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return ""
        for i, part in enumerate(delta.get("tool_calls") or ()):
            self._tool_delta(i, part)
        text = delta.get("content") or ""
        if text:
            self.text.append(text)
        return str(text)

    def _tool_delta(self, position: int, part: Any) -> None:
        if not isinstance(part, dict):
            raise ModelResponseError(f"malformed tool-call delta in the stream: {part!r}")
        slot = self.tools.setdefault(part.get("index", position), {"arguments": []})
        if part.get("id"):
            slot["id"] = part["id"]
        function = part.get("function") or {}
        if function.get("name"):
            slot["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            slot["object"] = arguments
        elif arguments:
            slot["arguments"].append(arguments)

    def calls(self) -> list[dict[str, Any]]:
        return [
            {
                "id": slot.get("id"),
                "function": {
                    "name": slot.get("name"),
                    "arguments": slot.get("object") or "".join(slot["arguments"]),
                },
            }
            for _, slot in sorted(self.tools.items())
        ]
