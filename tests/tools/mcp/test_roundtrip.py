"""tether's MCP client against tether's MCP server: contracts survive the trip (schemas, scope,
idempotency) and so do errors (their class and whether retrying helps)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from mcp import Client

from tests.tools.mcp import app
from tests.tools.mcp.conftest import our_stdio_toolset
from tether.core.errors import (
    ToolArgumentsError,
    ToolRateLimitedError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.tools.mcp import McpToolError, McpToolset, serve_tools

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(30)]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["stdio", "http", "in-process"])
async def remote(request: pytest.FixtureRequest) -> AsyncIterator[McpToolset]:
    if request.param == "stdio":
        ts = our_stdio_toolset(prefix="remote.")
    elif request.param == "http":
        url = request.getfixturevalue("http_url")
        ts = McpToolset.http(url, headers={"X-Tenant": "t1"}, prefix="remote.")
    else:  # any mcp.Client works, here the SDK's in-process connection to a Server
        server = serve_tools(app.registry)
        ts = McpToolset(lambda: Client(server), target="in-process", prefix="remote.")
    async with ts:
        yield ts


async def test_contracts_mirror_the_originals(remote):
    assert sorted(remote.names()) == sorted(f"remote.{t.name}" for t in app.tools)
    for original in app.tools:
        copy = remote.get(f"remote.{original.name}")
        assert copy.description == original.description
        assert copy.input_schema == original.input_schema
        assert (copy.scope, copy.idempotent) == (original.scope, original.idempotent)


async def test_values_come_back_as_the_tool_returned_them(remote):
    assert await remote.get("remote.add")(a=2, b=3) == 5
    assert await remote.get("remote.set_value")(key="k", value=1) == {"key": "k", "value": 1}
    assert await remote.get("remote.count_words")(words=["a", "a"]) == {"a": 2}
    assert await remote.get("remote.shout")(text="hey") == "HEY!"
    assert await remote.get("remote.noisy")() == "still fine"


async def test_the_idempotency_key_travels_with_the_call(remote):
    echo = remote.get("remote.echo_key")
    assert await echo.invoke(echo.validate({}), key="run-1:step-2:call-0") == "run-1:step-2:call-0"
    assert await echo.invoke({}) == "no key"


async def test_additional_properties_false_is_enforced_locally(remote):
    add = remote.get("remote.add")
    with pytest.raises(ToolArgumentsError, match="'c' was unexpected"):
        add.validate({"a": 1, "b": 2, "c": 3})


async def test_the_server_check_maps_back_to_tool_arguments_error(remote):
    add = remote.get("remote.add")
    with pytest.raises(ToolArgumentsError, match="invalid arguments for tool 'add'") as info:
        await add.invoke({"a": "x", "b": 1})  # skips the local check: the server refuses
    assert info.value.errors and info.value.errors[0]["loc"] == ["a"]


async def test_errors_keep_their_class_and_retry_semantics(remote):
    with pytest.raises(ToolRateLimitedError) as limited:
        await remote.get("remote.throttled")()
    assert limited.value.retry_after == 2.5 and limited.value.retryable
    with pytest.raises(ToolTransientError, match="503") as transient:
        await remote.get("remote.flaky")()
    assert transient.value.status == 503
    with pytest.raises(ToolTimeoutError, match="timed out"):
        await remote.get("remote.slow")()
    with pytest.raises(McpToolError, match=r"^nope$") as failed:
        await remote.get("remote.fail")(message="nope")
    assert not failed.value.retryable and failed.value.tool == "remote.fail"
    with pytest.raises(McpToolError, match="raised ValueError: kaput"):
        await remote.get("remote.broken")(message="kaput")


async def test_an_unreachable_http_server_is_a_transient_error():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ToolTransientError, match="cannot connect"):
        async with McpToolset.http(f"http://127.0.0.1:{port}/mcp", connect_timeout=10):
            pass
