"""Run-event data as span attributes: scalars as they are, the rest as compact JSON, and the
fields that may hold prompts, outputs, arguments or state left out unless content capture is
on (``tracing.capture_content``).

Every value a tether span records is bounded (``attribute_value``): a string holds at most
``MAX_TEXT`` characters, one cut ending with a marker naming its full size
(``…[cut: 5,000,012 bytes in all]``), and a sequence at most ``MAX_ITEMS`` items, so no span
grows past what OTLP exporters and collectors take (a few MB a request) because of one value."""

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
"""Longest attribute string, in characters (a longer one is cut, marked with its full size)."""
MAX_ITEMS = 64
"""Most items of a sequence attribute (a longer one is recorded as cut JSON text)."""

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


def cut(text: str) -> str:
    """``text`` when it holds at most ``MAX_TEXT`` characters, else its start and a marker
    saying it was cut and how many bytes (UTF-8) it held, ``MAX_TEXT`` characters in all."""
    if len(text) <= MAX_TEXT:
        return text
    size = len(text.encode("utf-8", "surrogatepass"))
    marker = f"…[cut: {size:,} bytes in all]"
    return text[: MAX_TEXT - len(marker)] + marker


def text_value(value: Any) -> str:
    """Compact JSON of ``value``, cut to ``MAX_TEXT`` characters."""
    try:
        text = serde.dumps(value).decode()
    except Exception:
        text = repr(value)
    return cut(text)


def attribute_value(value: Any) -> AttributeValue | None:
    """``value`` as a bounded span attribute value; None for None."""
    if value is None:
        return None
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple) and 0 < len(value) <= MAX_ITEMS:
        kinds = {type(v) for v in value}
        if kinds == {str}:
            return tuple(cut(v) for v in value)
        if kinds == {int}:
            return tuple(value)
        if kinds <= {int, float}:
            return tuple(float(v) for v in value)
    return text_value(value)


def bounded(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """``attributes`` with each value bounded (``attribute_value``); Nones left out."""
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        got = attribute_value(value)
        if got is not None:
            out[key] = got
    return out


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
