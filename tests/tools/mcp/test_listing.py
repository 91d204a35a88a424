"""A server's tool list as untrusted input: names used twice or unusable, paging that loops.

Against a hand-written stdio server (``raw_server.py``) that publishes exactly what a test says.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.tools.mcp.conftest import PY, ROOT
from tether.core.errors import ConfigurationError, ToolNotFoundError
from tether.tools.executor import ToolExecutor
from tether.tools.mcp import McpListingError, McpToolset
from tether.tools.policies import Scope
from tether.tools.registry import ToolRegistry

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

RAW_SERVER = str(ROOT / "tests" / "tools" / "mcp" / "raw_server.py")
OBJ = {"type": "object"}


def raw(tools: list[dict[str, Any]], *, cursor: str | None = None, **kw: Any) -> McpToolset:
    env = {"RAW_TOOLS": json.dumps(tools), **({"RAW_CURSOR": cursor} if cursor else {})}
    return McpToolset.stdio(PY, [RAW_SERVER], env=env, cwd=ROOT, **kw)


async def test_a_name_listed_twice_with_two_definitions_is_left_out(caplog):
    listed = [
        {"name": "purge", "inputSchema": OBJ, "annotations": {"readOnlyHint": True}},
        {"name": "purge", "inputSchema": OBJ, "annotations": {"destructiveHint": True}},
        {"name": "same", "inputSchema": OBJ},
        {"name": "same", "inputSchema": OBJ},
        {"name": "ok", "inputSchema": OBJ, "annotations": {"readOnlyHint": True}},
    ]
    caplog.set_level(logging.WARNING, "tether.tools.mcp")
    async with raw(listed, prefix="r.") as ts:
        # the read-only 'purge' must not stand for the destructive one
        assert ts.names() == ["r.same", "r.ok"]
        assert "two different tools" in ts.skipped["r.purge"]
        with pytest.raises(ToolNotFoundError, match=r"left tool 'r\.purge' out: the server lists"):
            ts.get("r.purge")
        assert ToolRegistry(ts.tools).names() == ["r.ok", "r.same"]
        assert ts.get("r.ok").scope is Scope.READ
        assert await ts.get("r.same")() == "same {}"
    assert "'r.purge' left out" in caplog.text


async def test_names_no_tool_can_have_are_left_out_not_a_crash():
    listed = [
        {"name": "nul\x00name", "inputSchema": OBJ},
        {"name": "", "inputSchema": OBJ},
        {"name": "spaced ", "inputSchema": OBJ},
        {"name": "line\nbreak", "inputSchema": OBJ},
        {"name": "x" * 129, "inputSchema": OBJ},
        {"name": "fine-name.v2", "inputSchema": OBJ},
        {"name": "ünïcode", "inputSchema": OBJ},
    ]
    async with raw(listed) as ts:
        assert ts.names() == ["fine-name.v2", "ünïcode"]
        assert ts.skipped == {
            "nul\x00name": "its name holds a control character",
            "": "its name is empty",
            "spaced ": "its name has a space at an end",
            "line\nbreak": "its name holds a control character",
            "x" * 129: "its name is longer than 128 characters",
        }
        res = await ToolExecutor(ts.tools).call("ünïcode", {"a": 1})
        assert res.value == 'ünïcode {"a": 1}'


async def test_a_paging_that_loops_is_an_error_not_a_short_list():
    with pytest.raises(McpListingError, match=r"lists its tools in a loop.*'again'"):
        async with raw([{"name": "t", "inputSchema": OBJ}], cursor="again"):
            pass


async def test_a_malformed_listing_is_not_a_transient_error():
    listed = [{"name": "t", "inputSchema": {"type": "object", "required": "path"}}]
    with pytest.raises(McpListingError, match="cannot list the tools") as info:
        async with raw(listed):
            pass
    assert not info.value.retryable


@pytest.mark.parametrize("prefix", ["fs\x00", " fs.", "fs.\n", 7])
async def test_a_prefix_no_name_can_start_with_is_refused(prefix):
    with pytest.raises(ConfigurationError, match="prefix"):
        raw([], prefix=prefix)
