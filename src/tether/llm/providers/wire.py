"""What every provider's wire format needs when reading an answer: tool-call arguments as
sent (an object or JSON text), token counts, and a check that a forced tool call was made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tether.core.errors import ModelResponseError
from tether.core.messages import ToolCall
from tether.llm.model import estimate_tokens
from tether.llm.types import ModelRequest, ModelResponse, Usage


def tool_call(call_id: str, name: str, arguments: Any) -> ToolCall:
    """A ToolCall from arguments as a wire format carries them: a JSON object, or JSON text
    (empty or absent: no arguments). Text that is not a JSON object stays in ``raw_arguments``
    with ``arguments`` empty, so validation can report it back to the model."""
    if isinstance(arguments, dict):
        return ToolCall(id=call_id, name=name, arguments=arguments)
    text = arguments if isinstance(arguments, str) else ""
    if not text.strip():
        return ToolCall(id=call_id, name=name)
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return ToolCall(id=call_id, name=name, arguments=parsed)
    return ToolCall(id=call_id, name=name, raw_arguments=text)


def tokens(usage: Mapping[str, Any], *keys: str) -> int | None:
    """The sum of the token counts under ``keys`` (absent or null ones count 0); None when one
    cannot be a count (negative, fractional, not a number): a server or a proxy reporting
    -4000 prompt tokens would otherwise credit the run's token budget with every call."""
    total = 0
    for key in keys:
        value = usage.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return None
        if isinstance(value, float) and not value.is_integer():
            return None
        total += int(value)
    return total


def reported_usage(input_tokens: int | None, output_tokens: int | None) -> Usage:
    """The usage a provider reported, or none at all (``Usage()``: tether counts it, see
    ``Model.finalize``) when either count was unusable: half a report would charge the
    budget for one side only."""
    if input_tokens is None or output_tokens is None:
        return Usage()
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens)


def check_tool_choice(request: ModelRequest, response: ModelResponse, model: str) -> None:
    """Raise ModelResponseError (retryable) when ``tool_choice`` forced a tool call and the
    answer has none (or not the named tool): some servers ignore ``tool_choice="required"``
    and answer in text, which the caller must not take for a call."""
    choice = request.tool_choice
    if choice in ("auto", "none"):
        return
    names = [c.name for c in response.tool_calls]
    if choice == "required" and names:
        return
    if choice != "required" and choice in names:
        return
    wanted = "a tool call" if choice == "required" else f"a call to the tool {choice!r}"
    got = f"calls to {names}" if names else f"text ({response.text[:80]!r})"
    refused = ModelResponseError(
        f"{model} was asked for {wanted} (tool_choice={choice!r}) but answered with {got}; the "
        "server may not support tool_choice: name the tool (tool_choice='<tool name>'), use a "
        "server or chat format that supports forced tool calls, or retry",
        model=model,
    )
    refused.usage = consumed(request, response)  # billed all the same
    raise refused


def consumed(request: ModelRequest, response: ModelResponse) -> Usage:
    """The tokens an answer that is refused after it arrived consumed: as reported, else
    estimated from the prompt and the answer."""
    if response.usage.total_tokens:
        return response.usage
    text = response.text + "".join(str(c.arguments) for c in response.tool_calls)
    prompt = sum(estimate_tokens(str(m.content or "")) for m in request.messages)
    return Usage(input_tokens=prompt, output_tokens=estimate_tokens(text), estimated=True)
