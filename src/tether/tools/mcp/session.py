"""One MCP client session, opened and closed by a task of its own, and the transports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import orjson
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tether.tools.mcp.stdio import TOO_LARGE, TOO_LARGE_CODE

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
    url: str,
    headers: Mapping[str, str] | None,
    timeout: httpx2.Timeout,
    max_message_bytes: int | None = None,
) -> AsyncIterator[Any]:
    """The SDK's streamable HTTP transport, its answers bounded at ``max_message_bytes``: an
    SSE event by the SDK's own limit, a JSON body by :class:`BoundedJson` (the SDK reads it
    whole). Bodies come uncompressed (``Accept-Encoding: identity``), so the bound is on what
    is parsed."""
    sent = {"accept-encoding": "identity", **dict(headers or {})}
    transport = BoundedJson(httpx2.AsyncHTTPTransport(), max_message_bytes)
    async with (
        httpx2.AsyncClient(headers=sent, timeout=timeout, transport=transport) as http,
        streamable_http_client(
            url, http_client=http, max_sse_event_size=max_message_bytes
        ) as streams,
    ):
        yield streams


class BoundedJson(httpx2.AsyncBaseTransport):
    """Reads a JSON answer up to ``limit`` bytes; past it the body is dropped unread and the
    request it answers gets a JSON-RPC error marked ``TOO_LARGE`` instead. Other answers (SSE
    streams, bounded per event by the SDK) pass as they come."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: int | None) -> None:
        self.inner = inner
        self.limit = limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        kind = response.headers.get("content-type", "").lower()
        if self.limit is None or not kind.startswith("application/json"):
            return response
        body = bytearray()
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                body += chunk
                if len(body) > self.limit:
                    return self._refused(request, response, len(body))
        finally:
            await response.aclose()
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            content=bytes(body),
            request=request,
            extensions=response.extensions,
        )

    def _refused(
        self, request: httpx2.Request, response: httpx2.Response, read: int
    ) -> httpx2.Response:
        try:
            rid = orjson.loads(request.content).get("id")
        except (orjson.JSONDecodeError, AttributeError):
            rid = None
        what = (
            f"the MCP server's message is larger than {self.limit} bytes (max_message_bytes): "
            "refused unread"
        )
        log.warning("%s (HTTP %s from %s)", what, response.status_code, request.url)
        error = {
            "code": TOO_LARGE_CODE,
            "message": what,
            "data": {TOO_LARGE: {"limit": self.limit, "read": read}},
        }
        return httpx2.Response(
            200,
            headers={"content-type": "application/json"},
            json={"jsonrpc": "2.0", "id": rid, "error": error},
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
