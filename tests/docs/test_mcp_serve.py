"""docs/tools.md's `python -m tether.tools.mcp ... --transport http` command serves the tools
at the URL the page gives (the page showed the command alone, and the server prints nothing, so
a reader had no URL to give McpToolset.http)."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import PYTHON, ROOT, SHELL, parse
from tether.tools.mcp import McpToolset

PAGE = ROOT / "docs" / "tools.md"


def _served_command() -> list[str]:
    for block in parse(PAGE):
        if block.lang in SHELL and "tether.tools.mcp" in block.code:
            return shlex.split(block.code.strip())
    raise AssertionError("docs/tools.md shows no `python -m tether.tools.mcp` command")


def _shop_tools() -> str:
    for block in parse(PAGE):
        if block.lang in PYTHON and "shop_tools.py" in block.code:
            match = re.search(r"write_text\('''(.*?)'''\)", block.code, re.DOTALL)
            assert match, "the MCP example no longer writes shop_tools.py"
            return match.group(1)
    raise AssertionError("docs/tools.md has no MCP example writing shop_tools.py")


async def _list(url: str, server: subprocess.Popen[bytes]) -> list[str]:
    while True:  # until the server listens (or dies: then say why)
        if server.poll() is not None:
            raise AssertionError(f"the server exited: {server.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            async with McpToolset.http(url) as remote:
                return remote.names()
        except Exception:
            await asyncio.sleep(0.1)


@pytest.mark.timeout(120)
def test_the_documented_http_server_answers_at_the_documented_url(tmp_path: Path) -> None:
    (tmp_path / "shop_tools.py").write_text(_shop_tools(), encoding="utf-8")
    command = _served_command()
    assert command[0] == "python"
    text = PAGE.read_text(encoding="utf-8")
    port = command[command.index("--port") + 1]
    match = re.search(rf"McpToolset\.http\(\"(http://127\.0\.0\.1:{port}/[^\"]*)\"\)", text)
    assert match, f"docs/tools.md does not say at which URL port {port} serves the tools"
    server = subprocess.Popen([sys.executable, *command[1:]], cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        assert asyncio.run(_list(match.group(1), server)) == ["stock"]
        # and it says so when it starts: the URL a client needs, the tools it serves
        said = server.stderr.readline().decode()  # type: ignore[union-attr]
        assert match.group(1) in said and "1 tool(s) (stock)" in said, said
    finally:
        server.terminate()
        server.wait(timeout=30)
