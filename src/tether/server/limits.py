"""Request limits as ASGI middleware: a body larger than ``max_body_bytes`` is refused with 413
(by its Content-Length, or as it streams in), and a request that takes longer than
``timeout`` seconds is answered 504; event streams are exempt from the timeout: tether's by
their path, and any other (A2A's streaming methods) once its ``text/event-stream`` answer
started, so a stream that lasts is never cut mid-way."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.server.problems import problem
from tether.server.root_prefix import route_path


class BodyTooLarge(Exception):
    pass


def _is_stream(path: str) -> bool:
    return path.endswith("/stream") or path.startswith("/v1/stream/")


def _event_stream(start: Message) -> bool:
    """Whether a response (its ``http.response.start``) is a Server-Sent Events stream."""
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).split(b";")[0].strip().lower() == b"text/event-stream"
    return False


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)  # below the root path: ``--root-path`` puts it in front
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    size = -1
                if size < 0 or size > self.max_body_bytes:
                    await self._too_large(scope, receive, send)
                    return
        seen = 0
        too_large = False
        started = False
        deadline: asyncio.Timeout | None = None

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body_bytes:
                    too_large = True
                    raise BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if too_large:  # the app answered its own error about the cut body: ours instead
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await self._too_large(scope, receive, send)
                return
            if msg["type"] == "http.response.start":
                started = True
                if deadline is not None and _event_stream(msg):
                    deadline.reschedule(None)  # answered in time: the stream goes on
            await send(msg)

        try:
            if _is_stream(path):
                await self.app(scope, limited_receive, tracking_send)
            else:
                async with asyncio.timeout(self.timeout) as deadline:  # no task of its own
                    await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send)
        except TimeoutError:
            if not started:
                resp = problem(
                    504,
                    f"the request took longer than {self.timeout:g} s and was stopped; "
                    "try again, or page through less at once",
                    kind="timeout",
                    instance=path,
                )
                await resp(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        resp = problem(
            413,
            f"the request body is larger than {self.max_body_bytes} bytes (or its "
            "Content-Length is invalid); send less, e.g. pass large data by reference",
            kind="body-too-large",
            instance=scope.get("path", ""),
        )
        await resp(scope, receive, send)
