"""Fixtures for the MCP tests: real subprocesses over stdio and a real uvicorn server over HTTP.

Toolsets and servers are shared per module (starting a Python process with the MCP SDK costs
about half a second); tests that break a session make their own.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn

from tests.tools.mcp import app
from tether.tools.mcp import McpToolset, http_app

ROOT = Path(__file__).resolve().parents[3]
SDK_SERVER = Path(__file__).resolve().parent / "sdk_server.py"
PY = sys.executable
OUR_SERVER_ARGS = ["-m", "tether.tools.mcp", "--app", "tests.tools.mcp.app:tools"]


def sdk_toolset(**kwargs: Any) -> McpToolset:
    return McpToolset.stdio(PY, [str(SDK_SERVER)], cwd=ROOT, **kwargs)


def our_stdio_toolset(**kwargs: Any) -> McpToolset:
    return McpToolset.stdio(PY, OUR_SERVER_ARGS, cwd=ROOT, **kwargs)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sdk_tools() -> AsyncIterator[McpToolset]:
    async with sdk_toolset(prefix="sdk.") as ts:
        yield ts


@contextmanager
def serving(asgi_app: Any) -> Iterator[str]:
    """``asgi_app`` served by uvicorn in a thread, on a free port of 127.0.0.1 that the OS
    picks; yields its MCP endpoint."""
    config = uvicorn.Config(asgi_app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="mcp-test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """Our server (the tools of app.py) over streamable HTTP."""
    with serving(http_app(app.tools)) as url:
        yield url
