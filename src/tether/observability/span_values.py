"""Run-event data as span attributes: scalars as they are, the rest as compact JSON, and the
fields that may hold prompts, outputs, arguments or state left out unless content capture is
on (``tracing.capture_content``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.core import serde

CONTENT_KEYS = frozenset(
    {
        "answer",
        "args",
        "arguments",
        "content",
        "input",
        "interrupts",
        "messages",
        "output",
        "patch",
        "payload",
        "prompt",
        "response",
        "result",
        "results",
        "state",
        "text",
        "value",
        "writes",
    }
)
"""Event fields that may carry what a user, a model or a tool said."""

MAX_TEXT = 2000
"""Longest attribute string (longer JSON is cut, marked with an ellipsis)."""

AttributeValue = str | bool | int | float | tuple[str, ...] | tuple[int, ...] | tuple[float, ...]


def scrub(value: Any, capture: bool) -> Any:
    """``value`` without the content fields (at any depth) unless ``capture``."""
    if capture:
        return value
    if isinstance(value, Mapping):
        return {k: scrub(v, False) for k, v in value.items() if k not in CONTENT_KEYS}
    if isinstance(value, list | tuple):
        return [scrub(v, False) for v in value]
    return value


def text_value(value: Any) -> str:
    """Compact JSON of ``value``, at most ``MAX_TEXT`` characters."""
    try:
        text = serde.dumps(value).decode()
    except Exception:
        text = repr(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def attribute_value(value: Any) -> AttributeValue | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(v) for v in value}
        if kinds == {str}:
            return tuple(value)
        if kinds == {int}:
            return tuple(value)
        if kinds <= {int, float}:
            return tuple(float(v) for v in value)
    return text_value(value)


def event_attributes(data: Mapping[str, Any], capture: bool) -> dict[str, AttributeValue]:
    """A run event's data as the attributes of a span event."""
    out: dict[str, AttributeValue] = {}
    for key, value in data.items():
        if not capture and key in CONTENT_KEYS:
            continue
        got = attribute_value(scrub(value, capture))
        if got is not None:
            out[str(key)] = got
    return out
