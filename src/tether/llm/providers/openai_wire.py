"""The OpenAI chat completions wire format: the request body for a :class:`ModelRequest`, and a
completion (or the pieces of a streamed one) read back into tether's types."""

from __future__ import annotations

from typing import Any

import orjson

from tether.core.messages import Message, ToolCall
from tether.llm.providers.http_errors import error_from_body, missing, reading
from tether.llm.providers.wire import reported_usage, tokens, tool_call
from tether.llm.types import ModelRequest, ModelResponse, Usage


def request_body(
    request: ModelRequest, model: str, *, max_tokens_key: str, json_object: bool
) -> dict[str, Any]:
    """The JSON body for ``request``. ``json_object`` asks for a schema as llama-cpp-python's
    server wants it, ``{"type": "json_object", "schema": ...}``, instead of OpenAI's
    ``json_schema``."""
    body: dict[str, Any] = {"model": model, "messages": [_message(m) for m in request.messages]}
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
    if fmt is not None and json_object:
        body["response_format"] = {"type": "json_object", "schema": fmt.json_schema}
    elif fmt is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": fmt.name, "schema": fmt.json_schema, "strict": fmt.strict},
        }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[max_tokens_key] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = 0  # llama-cpp-python returns none without it
    return body


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


def read_completion(body: Any, model: str) -> ModelResponse:
    """A ``chat.completion`` body as a ModelResponse; a ModelError when it is an error or not
    a completion."""
    if not isinstance(body, dict):
        raise missing(model, "a JSON object", body)
    if "error" in body and "choices" not in body:
        raise error_from_body(body, model=model)
    with reading(model, body):
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise missing(model, "choices", body)
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise missing(model, "choices[0].message", body)
        raw_calls = message.get("tool_calls") or ()
        calls = tuple(read_tool_call(model, i, c) for i, c in enumerate(raw_calls))
        response = ModelResponse(
            text=message.get("content") or "",
            tool_calls=calls,
            finish_reason=finish(choices[0].get("finish_reason"), calls),
            model=model,
            id=body.get("id"),
            usage=usage(body.get("usage")),
            logprobs=logprobs(choices[0].get("logprobs")),
        )
    return response


def read_tool_call(model: str, index: int, raw: Any) -> ToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
        raise missing(model, f"a function in tool call {index}", raw)
    function = raw["function"]
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise missing(model, f"a name in tool call {index}", raw)
    # some servers (Ollama) send the arguments as an object rather than JSON text
    return tool_call(raw.get("id") or f"call_{index}", name, function.get("arguments"))


def finish(reason: Any, calls: tuple[ToolCall, ...]) -> str:
    """OpenAI's finish reason (the legacy ``function_call`` read as ``tool_calls``); ``stop``
    when absent, and ``tool_calls`` when a "stopped" answer carries calls."""
    out = reason if isinstance(reason, str) and reason else "stop"
    if out == "function_call" or (calls and out == "stop"):
        return "tool_calls"
    return out


def usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return reported_usage(tokens(raw, "prompt_tokens"), tokens(raw, "completion_tokens"))


def logprobs(raw: Any) -> tuple[float, ...] | None:
    """Per-token log-probabilities from a choice's ``logprobs.content``; None when absent."""
    if not isinstance(raw, dict) or not isinstance(raw.get("content"), list):
        return None
    return tuple(float(t["logprob"]) for t in raw["content"] if isinstance(t, dict))
