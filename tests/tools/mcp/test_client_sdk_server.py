"""tether's MCP client against a server built with the official SDK (a stdio subprocess)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.tools.mcp.conftest import PY, sdk_toolset
from tether.core.errors import (
    ConfigurationError,
    ToolArgumentsError,
    ToolError,
    ToolNotFoundError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.tools.executor import ToolExecutor
from tether.tools.mcp import McpSessionClosedError, McpToolError, McpToolset
from tether.tools.policies import Scope, ToolRetry
from tether.tools.registry import ToolRegistry

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(30)]


async def test_tools_are_imported_with_names_schemas_scopes_and_idempotency(sdk_tools):
    by_name = {t.name: t for t in sdk_tools.tools}
    assert set(by_name) >= {
        "sdk.add",
        "sdk.delete_file",
        "sdk.put_value",
        "sdk.touch",
        "sdk.fail",
        "sdk.greet",
    }
    assert sdk_tools.server_info is not None and sdk_tools.server_info.name == "sdk-test-server"

    add = by_name["sdk.add"]
    assert add.description == "Add two integers."
    assert add.input_schema["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert sorted(add.input_schema["required"]) == ["a", "b"]
    assert add.spec()["input_schema"] == add.input_schema
    assert add.openai_spec()["function"]["name"] == "sdk.add"
    assert add.metadata["mcp"]["tool"] == "add"
    assert (add.scope, add.idempotent) == (Scope.READ, True)  # read-only: idempotent

    # explicit destructiveHint; no annotations at all (the MCP defaults: destructive)
    assert (by_name["sdk.delete_file"].scope, by_name["sdk.delete_file"].idempotent) == (
        Scope.DESTRUCTIVE,
        False,
    )
    assert (by_name["sdk.touch"].scope, by_name["sdk.touch"].idempotent) == (
        Scope.DESTRUCTIVE,
        False,
    )
    put = by_name["sdk.put_value"]
    assert (put.scope, put.idempotent) == (Scope.WRITE, True)
    assert put.retry.max_attempts > 1 and by_name["sdk.touch"].retry.max_attempts == 1
    assert ToolRegistry(sdk_tools.tools).names() == sorted(by_name)
    with pytest.raises(ToolNotFoundError, match="has no tool 'add'"):
        sdk_tools.get("add")  # the names carry the prefix


async def test_calls_reach_the_remote_tool(sdk_tools):
    assert await sdk_tools.get("sdk.add")(a=2, b=3) == 5  # {"result": 5} unwrapped
    add = sdk_tools.get("sdk.add")
    assert await add.invoke(add.validate({"a": 40, "b": 2})) == 42
    assert await sdk_tools.get("sdk.put_value")(key="k", value="v") == {"k": "v"}
    # an optional argument left out is not filled in: the server applies its default
    greet = sdk_tools.get("sdk.greet")
    assert greet.validate({"name": "ann"}) == {"name": "ann"}
    assert await greet(name="ann") == "hello ann"
    assert await greet(name="ann", greeting="hi") == "hi ann"
    # mixed content: text as str, the image as its MCP dict
    text, image = await sdk_tools.get("sdk.pixel")()
    assert text == "a pixel"
    assert image["type"] == "image" and image["mimeType"] == "image/png" and image["data"]


async def test_bad_arguments_fail_before_any_remote_call(sdk_tools):
    count = sdk_tools.get("sdk.call_count")
    before = await count()
    add = sdk_tools.get("sdk.add")
    with pytest.raises(ToolArgumentsError) as info:
        add.validate({"a": "x", "b": 1})
    assert info.value.errors[0]["loc"] == ["a"]
    assert "is not of type 'integer'" in str(info.value)
    with pytest.raises(ToolArgumentsError, match="'b' is a required property"):
        await add(a=1)
    with pytest.raises(ToolArgumentsError, match="object of named arguments"):
        add.validate([1, 2])  # type: ignore[arg-type]
    assert not info.value.retryable
    assert await count() == before


async def test_an_is_error_result_raises_a_tool_error(sdk_tools):
    with pytest.raises(McpToolError, match="cannot do it: nope") as info:
        await sdk_tools.get("sdk.fail")(reason="nope")
    assert isinstance(info.value, ToolError) and not info.value.retryable
    assert info.value.content[0]["type"] == "text"
    assert await sdk_tools.get("sdk.add")(a=1, b=1) == 2  # the session is fine


async def test_through_the_executor(sdk_tools):
    executor = ToolExecutor(sdk_tools.tools)
    ok = await executor.call("sdk.add", {"a": 1, "b": 2})
    assert ok.ok and ok.value == 3
    bad = await executor.call("sdk.add", {"a": "one", "b": 2})
    assert not bad.ok and isinstance(bad.error, ToolArgumentsError) and bad.attempts == 0
    failed = await executor.call("sdk.fail", {"reason": "r"})
    assert not failed.ok and isinstance(failed.error, McpToolError)


async def test_a_slow_call_times_out_and_the_session_survives():
    async with sdk_toolset(timeout=0.5) as ts:
        with pytest.raises(ToolTimeoutError) as info:
            await ts.get("sleep")(seconds=10)
        assert info.value.retryable
        assert await ts.get("add")(a=1, b=2) == 3


async def test_a_dead_server_is_a_transient_error_and_the_next_call_reconnects():
    async with sdk_toolset() as ts:
        assert await ts.get("put_value")(key="a", value="1") == {"a": "1"}
        with pytest.raises(ToolTransientError) as info:
            await ts.get("crash")()
        assert info.value.retryable
        # a fresh server process: the values of the old one are gone
        assert await ts.get("put_value")(key="b", value="2") == {"b": "2"}


async def test_no_reconnect_when_turned_off():
    async with sdk_toolset(reconnect=False) as ts:
        with pytest.raises(McpSessionClosedError) as info:
            await ts.get("crash")()
        assert not info.value.retryable
        with pytest.raises(McpSessionClosedError, match="reconnect is off") as info:
            await ts.get("add")(a=1, b=2)
        assert not info.value.retryable and "reconnect=True" in str(info.value)


async def test_no_reconnect_fails_each_call_at_once_through_the_executor():
    """reconnect=False: once the server process died, a call (even of an idempotent tool,
    whose contract retries transient failures) fails on its first attempt, typed, and no new
    server process is started."""
    ts = sdk_toolset(reconnect=False)
    connect, connects = ts._connect, []

    def counting() -> Any:
        connects.append(1)
        return connect()

    ts._connect = counting
    async with ts:
        # crash is made idempotent here, so only the missing reconnect keeps it from a retry
        crash = dataclasses.replace(ts.get("crash"), idempotent=True, retry=ToolRetry())
        executor = ToolExecutor([crash, ts.get("add")])
        assert (await executor.call("add", {"a": 1, "b": 2})).value == 3
        died = await executor.call("crash")
        assert isinstance(died.error, McpSessionClosedError) and died.attempts == 1
        after = await executor.call("add", {"a": 1, "b": 2})
        assert isinstance(after.error, McpSessionClosedError) and after.attempts == 1
        assert ts.get("add").retry.max_attempts == 3  # add would be retried: it was not
    assert connects == [1]


async def test_a_server_that_does_not_start_is_a_transient_error():
    ts = McpToolset.stdio(PY, ["-c", "import sys; sys.exit(1)"], connect_timeout=10)
    with pytest.raises(ToolTransientError, match="cannot connect"):
        await ts.open()


async def test_contracts_need_an_open_toolset():
    ts = sdk_toolset()
    with pytest.raises(ConfigurationError, match="not open"):
        _ = ts.tools
    async with ts:
        add = ts.get("add")
    with pytest.raises(ToolError, match="closed"):
        await add(a=1, b=2)
    with pytest.raises(ConfigurationError, match="opened once"):
        await ts.open()
