"""tether's MCP server applies a tool's max_result_bytes (else the server's, 1 MiB unless told) and
max_args_bytes: an oversized result reaches a real MCP client (the SDK's, over stdio) as an
isError result naming its size and the limit, never as a 20 MB message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import TextContent

from tests.tools.mcp.big_app import big, small_limit
from tests.tools.mcp.conftest import PY, ROOT
from tether.core.errors import ConfigurationError, ToolResultTooLargeError
from tether.tools.limits import MiB
from tether.tools.mcp import McpToolset, call_contract, serve_tools
from tether.tools.mcp.client import META_ERROR

pytestmark = pytest.mark.timeout(60)

ARGS = ["-m", "tether.tools.mcp", "--app", "tests.tools.mcp.big_app:tools"]


@asynccontextmanager
async def session() -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=PY, args=ARGS, cwd=ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        yield s


def text_of(result: object) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))  # type: ignore[attr-defined]


async def test_an_oversized_result_is_an_mcp_tool_error_naming_its_size_and_limit() -> None:
    async with session() as s:
        huge = await s.call_tool("big", {"size": 20_000_000})
        assert huge.is_error
        msg = text_of(huge)
        assert len(msg) < 2_000 and "20000002 bytes" in msg and f"limit of {MiB} bytes" in msg
        assert "serve_tools(..., max_result_bytes=N)" in msg
        assert huge.meta is not None
        assert huge.meta[META_ERROR] == {
            "type": "ToolResultTooLargeError",
            "retryable": False,
            "size": 20_000_002,
            "limit": MiB,
        }
        own = await s.call_tool("small_limit", {"size": 2_000})
        assert own.is_error and "over its limit of 1000 bytes" in text_of(own)
        assert "its effect happened" in text_of(own)  # a write tool: calling again repeats it
        fits = await s.call_tool("big", {"size": 1000})  # the session goes on
        assert not fits.is_error and text_of(fits) == "x" * 1000
        long_args = await s.call_tool("short_args", {"text": "z" * 200})
        assert long_args.is_error and "max_args_bytes" in text_of(long_args)
        assert (await s.call_tool("short_args", {"text": "zz"})).structured_content == {"result": 2}


async def test_a_tether_client_gets_tool_result_too_large() -> None:
    async with McpToolset.stdio(PY, ARGS, cwd=ROOT, max_result_bytes=64 * MiB) as ts:
        with pytest.raises(ToolResultTooLargeError, match="over its limit of 1048576 bytes") as e:
            await ts.get("big")(size=2 * MiB)
        # the sizes the server's _meta carries, as an in-process refusal has them
        assert (e.value.size, e.value.limit) == (2 * MiB + 2, MiB)


async def test_the_server_limit_is_configurable() -> None:
    lifted = await call_contract(big, {"size": 2 * MiB}, max_result_bytes=None)
    assert not lifted.is_error and len(text_of(lifted)) == 2 * MiB
    tight = await call_contract(big, {"size": 200}, max_result_bytes=100)
    assert tight.is_error and "limit of 100 bytes" in text_of(tight)
    own = await call_contract(small_limit, {"size": 900}, max_result_bytes=100)
    assert not own.is_error  # the tool's own limit wins over the server's
    with pytest.raises(ConfigurationError, match="max_result_bytes"):
        serve_tools([big], max_result_bytes=0)
