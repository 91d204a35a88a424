"""The Anthropic Messages API wire format: the request body for a :class:`ModelRequest`, and
an answer's content blocks read back into a :class:`ModelResponse`.

System prompts go to the top-level ``system`` field; tools become ``{name, description,
input_schema}``; assistant tool calls are ``tool_use`` blocks and tool results ``tool_result``
blocks in a user turn (consecutive results share one turn). Structured output uses the standard
technique: a tool whose input schema is the wanted schema (see :func:`output_tool`), which the
model is made to call; its input comes back as the response's JSON text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from tether.core.messages import Message, ToolCall
from tether.llm.providers.http_errors import error_from_body, missing, reading
from tether.llm.providers.wire import reported_usage, tokens, tool_call
from tether.llm.types import ModelRequest, ModelResponse, Usage

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
_OUTPUT_HINT = "Give the final answer as this tool's input, matching its schema exactly."
INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def output_tool(request: ModelRequest) -> str | None:
    """Name of the tool that carries structured output (None without a response format, or
    for a schema that is not an object: a tool's input must be one)."""
    fmt = request.response_format
    if fmt is None or fmt.json_schema.get("type", "object") != "object":
        return None
    base = re.sub(r"[^A-Za-z0-9_-]", "_", fmt.name)[:60] or "output"
    taken = {t.name for t in request.tools}
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def request_body(
    request: ModelRequest, model: str, *, max_tokens: int, output: str | None
) -> dict[str, Any]:
    """The JSON body for ``request``; ``output`` is its :func:`output_tool`."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens or max_tokens,
        "messages": messages(request.messages),
    }
    if request.system_prompt:
        body["system"] = request.system_prompt
    tools = [
        {"name": t.name, "description": t.description, "input_schema": t.parameters}
        for t in request.tools
    ]
    choice = _CHOICES.get(request.tool_choice) or {"type": "tool", "name": request.tool_choice}
    fmt = request.response_format
    if fmt is not None and output is not None:
        tools.append({"name": output, "description": _OUTPUT_HINT, "input_schema": fmt.json_schema})
        # Alone, the output tool is forced; beside real tools the model picks one of them (or
        # calls the one the request names).
        if not request.tools or request.tool_choice == "none":
            choice = {"type": "tool", "name": output}
        elif request.tool_choice in _CHOICES:
            choice = {"type": "any"}
    if tools:
        body["tools"] = tools
        body["tool_choice"] = choice
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    return body


def messages(history: Iterable[Message]) -> list[dict[str, Any]]:
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


def read_message(body: Any, model: str, output: str | None) -> ModelResponse:
    """A ``message`` body as a ModelResponse; a ModelError when it is an error or no message."""
    if not isinstance(body, dict):
        raise missing(model, "a JSON object", body)
    if body.get("type") == "error":
        raise error_from_body(body, model=model)
    content = body.get("content")
    if not isinstance(content, list):
        raise missing(model, "content", body)
    with reading(model, body):
        response = answer(
            model,
            content,
            output,
            body.get("stop_reason"),
            body.get("id"),
            usage(body.get("usage")),
        )
    return response


def answer(
    model: str,
    blocks: Iterable[Any],
    output: str | None,
    stop_reason: Any,
    message_id: str | None,
    used: Usage,
) -> ModelResponse:
    """The response in content blocks: text blocks joined, ``tool_use`` blocks as tool calls
    (``input`` an object or JSON text), except the structured-output tool, whose input is the
    text. Other block kinds (thinking...) are left out."""
    text: list[str] = []
    calls: list[ToolCall] = []
    structured = False
    for block in blocks:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            text.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            name, call_id, arguments = block.get("name"), block.get("id"), block.get("input")
            if not isinstance(name, str) or not isinstance(call_id, str):
                raise missing(model, "a tool_use id and name", block)
            if name == output:
                if not isinstance(arguments, str):
                    arguments = orjson.dumps(arguments or {}).decode()
                text, structured = [arguments], True
                break
            calls.append(tool_call(call_id, name, arguments))
    reason = finish(stop_reason)
    if structured and not calls and reason == "tool_calls":
        reason = "stop"  # the forced output tool is the answer, not a call to run
    return ModelResponse(
        text="".join(text),
        tool_calls=tuple(calls),
        finish_reason=reason,
        model=model,
        id=message_id,
        usage=used,
    )


def finish(reason: Any) -> str:
    return FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"


def usage(raw: Any) -> Usage:
    """Input tokens include the cache's (written and read); they are all in the prompt."""
    if not isinstance(raw, dict):
        return Usage()
    return reported_usage(tokens(raw, *INPUT_KEYS), tokens(raw, "output_tokens"))
