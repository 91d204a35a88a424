"""The official SDK's client against tether's MCP server: over stdio (``python -m
tether.tools.mcp`` as a subprocess) and over streamable HTTP (uvicorn on a free local port)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, TextContent

from tests.tools.mcp import app
from tests.tools.mcp.conftest import OUR_SERVER_ARGS, PY, ROOT

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def stdio_session() -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=PY, args=OUR_SERVER_ARGS, cwd=ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def text_of(result) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


async def check_listing(session: ClientSession) -> None:
    listed = {t.name: t for t in (await session.list_tools()).tools}
    assert list(listed) == [t.name for t in app.tools]

    add = listed["add"]
    assert add.description == "Add two integers."
    assert add.input_schema == app.add.input_schema
    assert add.input_schema["additionalProperties"] is False
    assert add.output_schema == {
        "type": "object",
        "required": ["result"],
        "properties": {"result": {"type": "integer"}},
    }
    assert add.annotations is not None
    assert (
        add.annotations.read_only_hint,
        add.annotations.destructive_hint,
        add.annotations.idempotent_hint,
    ) == (True, False, True)

    delete = listed["delete_file"].annotations
    assert delete is not None
    assert (delete.read_only_hint, delete.destructive_hint, delete.idempotent_hint) == (
        False,
        True,
        False,
    )
    set_value = listed["set_value"]
    assert set_value.annotations is not None
    assert (
        set_value.annotations.read_only_hint,
        set_value.annotations.destructive_hint,
        set_value.annotations.idempotent_hint,
    ) == (False, False, True)
    assert set_value.output_schema is not None
    assert set_value.output_schema["properties"]["value"]["type"] == "integer"
    assert listed["noisy"].output_schema is not None


async def check_calls(session: ClientSession) -> None:
    ok = await session.call_tool("add", {"a": 2, "b": 3})
    assert not ok.is_error and ok.structured_content == {"result": 5} and text_of(ok) == "5"

    item = await session.call_tool("set_value", {"key": "k", "value": 7})
    assert item.structured_content == {"key": "k", "value": 7}

    shout = await session.call_tool("shout", {"text": "hi"})
    assert shout.structured_content == {"result": "HI!"} and text_of(shout) == "HI!"

    # invalid arguments: an isError result the model can read, not a protocol error
    bad = await session.call_tool("add", {"a": "x", "b": 3})
    assert bad.is_error and "invalid arguments for tool 'add'" in text_of(bad)
    assert bad.meta is not None and bad.meta["tether/error"]["type"] == "ToolArgumentsError"
    extra = await session.call_tool("add", {"a": 1, "b": 2, "c": 3})
    assert extra.is_error and "c: Extra inputs are not permitted" in text_of(extra)
    missing = await session.call_tool("add", {"a": 1})
    assert missing.is_error and "b: Field required" in text_of(missing)

    # tools that raise: isError results, and the server keeps serving
    failed = await session.call_tool("fail", {"message": "nope"})
    assert failed.is_error and text_of(failed) == "nope"
    broken = await session.call_tool("broken", {"message": "kaput"})
    assert broken.is_error and "raised ValueError: kaput" in text_of(broken)
    slow = await session.call_tool("slow", {})
    assert slow.is_error and "timed out" in text_of(slow)
    assert slow.meta is not None and slow.meta["tether/error"]["retryable"] is True

    # an unknown tool is a protocol error (MCP spec)
    with pytest.raises(MCPError) as info:
        await session.call_tool("no_such_tool", {})
    assert info.value.code == INVALID_PARAMS

    again = await session.call_tool("add", {"a": 1, "b": 1})
    assert again.structured_content == {"result": 2}


async def test_stdio_list_and_call():
    async with stdio_session() as session:
        await check_listing(session)
        await check_calls(session)
        # what a tool prints to stdout does not corrupt the wire
        noisy = await session.call_tool("noisy", {})
        assert noisy.structured_content == {"result": "still fine"}


async def test_http_list_and_call(http_url):
    async with http_session(http_url) as session:
        await check_listing(session)
        await check_calls(session)


async def test_http_with_the_sdk_high_level_client(http_url):
    # mcp.Client negotiates the newest protocol (server/discover) instead of initialize
    async with Client(http_url) as client:
        assert client.server_info is not None and client.server_info.name == "tether"
        listed = await client.list_tools()
        assert "add" in [t.name for t in listed.tools]
        ok = await client.call_tool("count_words", {"words": ["a", "b", "a"]})
        assert ok.structured_content == {"a": 2, "b": 1}
        bad = await client.call_tool("count_words", {"words": "a b"})
        assert bad.is_error


async def test_the_tools_key_rule_applies_to_mcp_calls():
    """charge declares idempotency_key=lambda a: f"order-{a['order_id']}": called twice by the
    official client over stdio (python -m tether.tools.mcp), it gets that key both times; the
    rule wins over a key in the request's _meta, and a tool without a rule gets the client's."""
    async with stdio_session() as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
        annotations = listed["charge"].annotations
        assert annotations is not None and annotations.idempotent_hint is True
        assert "idempotency_key" not in listed["charge"].input_schema["properties"]
        for _ in range(2):
            out = await session.call_tool("charge", {"order_id": "A1", "cents": 500})
            assert not out.is_error and text_of(out) == "charged A1 500 key=order-A1"
        other = await session.call_tool("charge", {"order_id": "B2", "cents": 5})
        assert text_of(other) == "charged B2 5 key=order-B2"
        meta = {"tether/idempotency-key": "client-key-1"}
        ruled = await session.call_tool("charge", {"order_id": "A1", "cents": 500}, meta=meta)
        assert text_of(ruled) == "charged A1 500 key=order-A1"
        given = await session.call_tool("echo_key", {}, meta=meta)
        assert text_of(given) == "client-key-1"
        assert text_of(await session.call_tool("echo_key", {})) == "no key"


def test_main_serves_a_registry_and_reports_a_bad_app():
    bad = subprocess.run(
        [PY, "-m", "tether.tools.mcp", "--app", "tests.tools.mcp.app:nothing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2 and "has no attribute 'nothing'" in bad.stderr
    wrong = subprocess.run(
        [PY, "-m", "tether.tools.mcp", "--app", "tests.tools.mcp.app:Item"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert wrong.returncode == 2 and "expected a list of tool contracts" in wrong.stderr


async def test_main_serves_a_tool_registry():
    params = StdioServerParameters(
        command=PY,
        args=["-m", "tether.tools.mcp", "--app", "tests.tools.mcp.app:registry"],
        cwd=ROOT,
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        names = [t.name for t in (await session.list_tools()).tools]
        assert names == app.registry.names()


def test_missing_sdk_is_a_configuration_error():
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "try:\n    import tether.tools.mcp\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("ConfigurationError")
    assert "pip install 'tether[mcp]'" in out.stdout
