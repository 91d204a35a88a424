"""Tools with large answers and arguments, served over MCP by test_server_result_size
(``--app tests.tools.mcp.big_app:tools``)."""

from __future__ import annotations

from tether.tools.contract import tool


@tool
def big(size: int) -> str:
    """Answer ``size`` bytes of text."""
    return "x" * size


@tool(scope="write", max_result_bytes=1000)
def small_limit(size: int) -> dict[str, str]:
    """Write, then answer ``size`` bytes under its own 1,000-byte limit."""
    return {"data": "y" * size}


@tool(max_args_bytes=100)
def short_args(text: str) -> int:
    """Count the characters it is sent (100 bytes of arguments at most)."""
    return len(text)


tools = [big, small_limit, short_args]
