"""An MCP server built with the official SDK (``MCPServer``), for testing tether's client.

Started by the tests as a stdio subprocess: ``python tests/tools/mcp/sdk_server.py``.
"""

from __future__ import annotations

import base64
import os

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ImageContent, TextContent, ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True)
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()

server = MCPServer("sdk-test-server", version="1.2.3", log_level="WARNING")
calls = 0
values: dict[str, str] = {}


def _count() -> None:
    global calls
    calls += 1


@server.tool(annotations=READ_ONLY)
def add(a: int, b: int) -> int:
    """Add two integers."""
    _count()
    return a + b


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def delete_file(path: str) -> str:
    """Delete a file (pretend)."""
    _count()
    return f"deleted {path}"


@server.tool(
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)
)
def put_value(key: str, value: str) -> dict[str, str]:
    """Store a value under a key; storing it again changes nothing."""
    _count()
    values[key] = value
    return dict(values)


@server.tool()
def touch(path: str) -> str:
    """No annotations at all: per the MCP spec a destructive, non-idempotent tool."""
    _count()
    return f"touched {path}"


@server.tool(annotations=READ_ONLY)
def greet(name: str, greeting: str = "hello") -> str:
    """Greet someone."""
    _count()
    return f"{greeting} {name}"


@server.tool(annotations=READ_ONLY)
def fail(reason: str) -> str:
    """Always fails with an isError result."""
    _count()
    raise ToolError(f"cannot do it: {reason}")


@server.tool(annotations=READ_ONLY, structured_output=False)
def pixel() -> list[TextContent | ImageContent]:
    """Text and an image."""
    _count()
    return [TextContent(text="a pixel"), ImageContent(data=PIXEL, mime_type="image/png")]


@server.tool(annotations=READ_ONLY)
async def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    _count()
    await anyio.sleep(seconds)
    return "awake"


@server.tool()
def crash() -> str:
    """Kill the server process."""
    os._exit(3)


@server.tool(annotations=READ_ONLY)
def call_count() -> int:
    """How many tool calls this process has served (this one not counted)."""
    return calls


if __name__ == "__main__":
    server.run("stdio")
