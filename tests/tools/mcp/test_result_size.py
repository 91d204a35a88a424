"""An MCP server's answer is read up to the toolset's wire limit (4x ``max_result_bytes``, at
least 4 MiB), over stdio and HTTP. The SDK's stdio reader took a 20 MB answer whole, re-joining
its buffer at every chunk (seconds of CPU), and its HTTP reader took any JSON body whole; now a
larger answer is refused unread as ToolResultTooLargeError and the session goes on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.tools.mcp.conftest import PY, ROOT, serving
from tether.tools import ToolExecutor, ToolResultTooLargeError, tool
from tether.tools.limits import MiB
from tether.tools.mcp import McpToolset, http_app
from tether.tools.mcp.stdio import LineReader, response_id, response_id_at_end

pytestmark = pytest.mark.timeout(60)

RAW_SERVER = str(ROOT / "tests" / "tools" / "mcp" / "raw_server.py")
BIG = {
    "name": "big",
    "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer"}}},
    "annotations": {"readOnlyHint": True},
}
ECHO = {"name": "echo", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}


def raw(*, id_last: bool = False, **kw: Any) -> McpToolset:
    env = {"RAW_TOOLS": json.dumps([BIG, ECHO]), **({"RAW_ID_LAST": "1"} if id_last else {})}
    return McpToolset.stdio(PY, [RAW_SERVER], env=env, cwd=ROOT, **kw)


@pytest.mark.parametrize("id_last", [False, True])
async def test_a_20_mb_stdio_answer_is_refused_unread_and_the_session_goes_on(
    id_last: bool,
) -> None:
    async with raw(id_last=id_last) as ts:
        assert ts.max_result_bytes == MiB and ts.max_message_bytes == 4 * MiB
        big = ts.get("big")
        with pytest.raises(ToolResultTooLargeError) as caught:
            await big(bytes=20_000_000)  # the contract itself: the transport refuses it
        err = caught.value
        assert err.limit == 4 * MiB and err.size is not None and 4 * MiB < err.size < 5 * MiB
        assert "more than" in str(err) and "McpToolset(max_result_bytes=N)" in str(err)
        # the rest of the 20 MB was dropped: the next answers are read as they come
        assert await ts.get("echo")(a=1) == 'echo {"a": 1}'
        assert await big(bytes=3 * MiB) == "x" * (3 * MiB)  # many chunks, one line
        result = await ToolExecutor(ts.tools).call("big", {"bytes": 20_000_000})
        assert isinstance(result.error, ToolResultTooLargeError) and result.attempts == 1


async def test_an_answer_whose_id_comes_last_is_refused_alone_while_other_calls_wait() -> None:
    """The TypeScript SDK's servers write ``{"result": ..., "jsonrpc", "id"}``: the id of a
    refused answer is read from its end, so only its call fails and the session goes on (the
    session ended, failing every call in flight, when more than one was waiting)."""
    env = {"RAW_TOOLS": json.dumps([BIG, ECHO]), "RAW_ID_LAST": "1", "RAW_HOLD_BIG": "1"}
    async with McpToolset.stdio(PY, [RAW_SERVER], env=env, cwd=ROOT, reconnect=False) as ts:
        big, echo = ts.get("big"), ts.get("echo")
        outcomes = await asyncio.gather(big(bytes=20_000_000), echo(a=1), return_exceptions=True)
        refused, answered = outcomes
        assert isinstance(refused, ToolResultTooLargeError), refused
        assert refused.size == 20_000_082  # the whole message, read to its end
        assert answered == 'echo {"a": 1}'
        assert await echo(b=2) == 'echo {"b": 2}'  # the same session


def test_the_id_of_a_cut_off_answer_is_read_from_its_tail() -> None:
    assert response_id_at_end(b'xxxx"}]}, "id": 7}') == 7
    assert response_id_at_end(b'x"}]},"id":"r-1"}  \r') == "r-1"
    assert response_id_at_end(b'xx"}]}, "jsonrpc": "2.0"}') is None
    assert response_id_at_end(b'xx"}]}, "id": true}') is None
    assert response_id_at_end(b'"text": "a \\"id\\": 5}') is None  # inside a string
    assert response_id_at_end(b"") is None


async def test_a_toolset_limit_raises_or_lifts_the_wire_bound() -> None:
    async with raw(max_result_bytes=8 * MiB) as ts:
        assert ts.max_message_bytes == 32 * MiB
        assert len(await ts.get("big")(bytes=20_000_000)) == 20_000_000
        refused = await ToolExecutor(ts.tools).call("big", {"bytes": 20_000_000})
        assert isinstance(refused.error, ToolResultTooLargeError)  # past the contract's 8 MiB
        assert refused.error.limit == 8 * MiB and refused.error.size == 20_000_002
    async with raw(max_result_bytes=None) as ts:
        assert ts.max_message_bytes is None
        assert (await ToolExecutor(ts.tools).call("big", {"bytes": 20_000_000})).ok


@tool(max_result_bytes=None)  # the server sends it all: the client's bound is what is tested
def blob(n: int) -> str:
    """Return n bytes."""
    return "b" * n


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_20_mb_http_answer_is_refused_unread(json_response: bool) -> None:
    with serving(http_app([blob], json_response=json_response)) as url:
        async with McpToolset.http(url) as ts:
            call = ts.get("blob")
            with pytest.raises(ToolResultTooLargeError) as caught:
                await call(n=20_000_000)
            assert caught.value.limit == 4 * MiB
            assert await call(n=5) == "bbbbb"  # the session goes on
            assert await call(n=MiB) == "b" * MiB  # twice on the wire, under 4 MiB


def test_the_line_reader_splits_in_order_and_drops_what_is_too_long() -> None:
    lines = LineReader(10)
    assert lines.feed(b"a\nbc") == ([b"a"], None)
    assert lines.feed(b"d\n\ne") == ([b"bcd", b""], None)
    done, refused = lines.feed(b"0123456789")
    assert done == [] and refused == (b"e0123456789", 11)
    assert lines.feed(b"still the long line") == ([], None)
    assert lines.feed(b"end\nok\n") == ([b"ok"], None)
    assert LineReader(None).feed(b"x" * 100 + b"\n") == ([b"x" * 100], None)


def test_the_id_of_a_cut_off_answer_is_read_from_its_head() -> None:
    assert response_id(b'{"jsonrpc": "2.0", "id": 7, "result": {"content": [{"te') == 7
    assert response_id(b'{"id":"r-1","jsonrpc":"2.0","result":{"a":"xx') == "r-1"
    assert response_id(b'{"jsonrpc": "2.0", "result": {"content": "xxx') is None  # id after
    assert response_id(b'{"jsonrpc":"2.0","method":"notify","id":3,"params":{"x') is None
    assert response_id(b'{"jsonrpc":"2.0","id":true,"result":{') is None
    assert response_id(b"garbage") is None
