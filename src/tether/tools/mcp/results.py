"""What an MCP call gives back: a tool result as a value, a failure as a typed ToolError.

A result's structured content when there is some, else its content blocks; an ``isError``
result (with tether's ``_meta["tether/error"]`` when a tether server sent it, so the error keeps
its class and retry semantics across the wire) or a JSON-RPC error as the matching ToolError.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    REQUEST_TIMEOUT,
    CallToolResult,
    ContentBlock,
    TextContent,
)

from tether.core.errors import (
    ToolArgumentsError,
    ToolError,
    ToolRateLimitedError,
    ToolResultTooLargeError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.tools.mcp.stdio import TOO_LARGE

META_ERROR = "tether/error"
"""Result ``_meta`` entry of a failed call on a tether server: the error class and whether
retrying helps, so the error keeps its retry semantics across the wire."""


class McpToolError(ToolError):
    """The MCP tool reported a failure (an ``isError`` result) or the server answered the call
    with an error. Not retried: the message goes back to the planner."""

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        code: int | None = None,
        content: list[Any] | None = None,
        structured: Any = None,
    ) -> None:
        super().__init__(message, tool=tool)
        self.code = code
        self.content = content or []
        self.structured = structured


def _is_wrapped(schema: dict[str, Any] | None) -> bool:
    """Whether an outputSchema is the ``{"result": ...}`` wrapper that servers put around a value
    that is not an object (the MCP SDK's servers and tether's do)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return False
    props = schema.get("properties")
    return (
        isinstance(props, dict)
        and set(props) == {"result"}
        and schema.get("required") == ["result"]
    )


def result_value(result: CallToolResult, output_schema: dict[str, Any] | None = None) -> Any:
    """What a call returns: the structured content when there is some (unwrapped from
    ``{"result": ...}`` when the output schema is that wrapper), else the text of the content
    blocks joined with newlines, else (images, audio, resources in the mix) a list of the blocks,
    text as strings and the others as their MCP dicts."""
    data = result.structured_content
    if data is not None:
        if _is_wrapped(output_schema) and isinstance(data, dict) and set(data) == {"result"}:
            return data["result"]
        return data
    return content_value(result.content)


def content_value(blocks: Sequence[ContentBlock]) -> Any:
    if not blocks:
        return None
    if all(isinstance(b, TextContent) for b in blocks):
        return "\n".join(cast(TextContent, b).text for b in blocks)
    return [
        b.text
        if isinstance(b, TextContent)
        else b.model_dump(mode="json", by_alias=True, exclude_none=True)
        for b in blocks
    ]


def _error_text(result: CallToolResult) -> str:
    parts = [b.text if isinstance(b, TextContent) else f"[{b.type}]" for b in result.content]
    return "\n".join(parts) or "the MCP tool reported an error without a message"


def from_error_result(result: CallToolResult, name: str) -> ToolError:
    text = _error_text(result)
    info = (result.meta or {}).get(META_ERROR)
    if isinstance(info, dict):
        kind = info.get("type")
        if kind == "ToolResultTooLargeError":  # over the served tool's own limit
            size, limit = info.get("size"), info.get("limit")
            return ToolResultTooLargeError(text, tool=name, size=_count(size), limit=_count(limit))
        if kind == "ToolArgumentsError":
            errors = info.get("errors")
            return ToolArgumentsError(
                text, tool=name, errors=errors if isinstance(errors, list) else None
            )
        if info.get("retryable") is True:
            if kind == "ToolRateLimitedError":
                after = info.get("retry_after")
                return ToolRateLimitedError(
                    text,
                    tool=name,
                    retry_after=float(after) if isinstance(after, int | float) else None,
                )
            if kind == "ToolTimeoutError":
                return ToolTimeoutError(text, tool=name)
            status = info.get("status")
            return ToolTransientError(
                text, tool=name, status=status if isinstance(status, int) else None
            )
    return McpToolError(
        text,
        tool=name,
        content=[
            b.model_dump(mode="json", by_alias=True, exclude_none=True) for b in result.content
        ],
        structured=result.structured_content,
    )


def _count(value: Any) -> int | None:
    """A byte count from a server's ``_meta`` (None when it is not one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_SSE_TOO_LARGE = re.compile(r"event exceeded the (\d+) byte limit")


def too_large_of(exc: MCPError) -> tuple[int, int] | None:
    """``(bytes read, limit)`` when ``exc`` stands for an answer refused for its size: by
    tether's transports (``TOO_LARGE`` in its data) or by the SDK's SSE reader (an event over
    its ``max_sse_event_size``), else None."""
    data = exc.data
    info = data.get(TOO_LARGE) if isinstance(data, dict) else None
    if isinstance(info, dict):
        read, limit = info.get("read"), info.get("limit")
        if isinstance(read, int) and isinstance(limit, int):
            return read, limit
    found = _SSE_TOO_LARGE.search(exc.message) if exc.code == CONNECTION_CLOSED else None
    if found is not None:
        return int(found.group(1)) + 1, int(found.group(1))
    return None


def from_mcp_error(exc: MCPError, name: str) -> ToolError:
    msg = f"tool {name!r}: MCP error {exc.code}: {exc.message}"
    if exc.code == REQUEST_TIMEOUT:
        return ToolTimeoutError(msg, tool=name)
    if exc.code in (CONNECTION_CLOSED, INTERNAL_ERROR):
        return ToolTransientError(msg, tool=name)
    if exc.code == INVALID_PARAMS:
        return ToolArgumentsError(msg, tool=name)
    return McpToolError(msg, tool=name, code=exc.code)
