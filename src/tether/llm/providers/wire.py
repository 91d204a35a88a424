"""What every provider's wire format needs when reading an answer: tool-call arguments as
sent (an object or JSON text) and token counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tether.core.messages import ToolCall


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


def tokens(usage: Mapping[str, Any], *keys: str) -> int:
    """The sum of the token counts under ``keys`` (absent or null ones count 0)."""
    return sum(int(usage.get(k) or 0) for k in keys)
