"""One MCP client session, opened and closed by a task of its own, and the transports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

log = logging.getLogger("tether.tools.mcp.client")

HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
TRANSPORT_ERRORS = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    OSError,
    httpx2.TransportError,
)


class Connection:
    """One MCP client session, opened and closed by a task of its own: the SDK's task groups and
    cancel scopes must be exited by the task that entered them, and this way the toolset can be
    opened, used, re-opened and closed from any task."""

    def __init__(self, connect: Callable[[], Client]) -> None:
        self._connect = connect
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.broken = False

    async def open(self, timeout: float | None) -> Client:
        self._task = asyncio.create_task(self._run(), name="tether-mcp-session")
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._ready)
        except BaseException:
            await self.close()
            raise

    async def _run(self) -> None:
        try:
            async with self._connect() as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except asyncio.CancelledError:
            if not self._ready.done():
                self._ready.cancel()
            raise
        except Exception as exc:  # handed to the opener or logged, never lost
            if not self._ready.done():
                self._ready.set_exception(root_cause(exc))
            else:
                log.debug("MCP session ended with an error: %r", exc)
        finally:
            self.broken = True

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is None:
            return
        if not self._ready.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def root_cause(exc: BaseException) -> BaseException:
    """The one real error inside the SDK's (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def http_transport(
    url: str, headers: Mapping[str, str] | None, timeout: httpx2.Timeout
) -> AsyncIterator[Any]:
    async with (
        httpx2.AsyncClient(headers=dict(headers or {}), timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams
