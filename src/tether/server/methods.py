"""HEAD and OPTIONS on every route (ASGI middleware), and the methods a path takes.

FastAPI's routes take only the methods they declare, so ``HEAD /v1/runs`` and
``OPTIONS /v1/runs`` were a 405. ``HeadAndOptions`` answers them on every path the app
serves:

* ``HEAD`` on a path that takes ``GET`` runs the ``GET`` (its auth, its checks, its status and
  headers, ``Content-Length`` included) and sends no body; on an event stream it sends the
  stream's headers and stops the stream. On a path without ``GET`` it is the app's 405 (or 404),
  bodiless too.
* ``OPTIONS`` on a path the app serves answers ``204`` with ``Allow`` naming its methods; on
  an unknown path the app's 404. No CORS: the server sets no ``Access-Control-*`` header, so
  a browser on another origin is refused as before (the dashboard is served from the same
  origin).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
"""The methods a route may declare (HEAD and OPTIONS follow from them)."""
CATCH_ALL = "/v1/{path"
"""Routes whose path starts so answer unknown API paths: they take no method of their own."""


class _HeadEnded(OSError):
    """A HEAD answer is complete: the app's further body (a stream's) is not wanted."""


def methods_of(routes: Sequence[object], scope: Scope) -> list[str]:
    """The methods ``routes`` take on the scope's path, in a stable order, with HEAD beside
    GET and OPTIONS last; ``[]`` when no route serves the path (the catch-all excepted)."""
    taken = []
    for method in METHODS:
        asked = {**scope, "method": method}
        for route in routes:
            if str(getattr(route, "path", "")).startswith(CATCH_ALL):
                continue
            matches = getattr(route, "matches", None)
            if matches is not None and matches(asked)[0] is Match.FULL:
                taken.append(method)
                break
    if not taken:
        return []
    if "GET" in taken:
        taken.insert(1, "HEAD")
    return [*taken, "OPTIONS"]


class HeadAndOptions:
    """See the module docstring. ``allowed(scope)`` names the methods of the scope's path."""

    def __init__(self, app: ASGIApp, allowed: Callable[[Scope], list[str]]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method") if scope["type"] == "http" else None
        if method not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        allowed = self.allowed(scope)
        if method == "OPTIONS":
            if allowed:
                await _no_content(send, ", ".join(allowed))
            else:
                await self.app(scope, receive, send)  # the app's 404
            return
        if "GET" in allowed:
            scope = {**scope, "method": "GET"}
        await self._head(scope, receive, send)

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        ended = False

        async def headers_only(msg: Message) -> None:
            nonlocal ended
            if ended:
                raise _HeadEnded("the HEAD answer is sent")
            if msg["type"] == "http.response.start":
                await send(msg)
                return
            ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if msg.get("more_body", False):
                raise _HeadEnded("the HEAD answer is sent")  # a stream: stop it now

        async def until_ended() -> Message:
            if ended:  # a stream waiting for its client to leave: it left
                return {"type": "http.disconnect"}
            return await receive()

        try:
            await self.app(scope, until_ended, headers_only)
        except (_HeadEnded, ClientDisconnect):
            if not ended:
                raise


async def _no_content(send: Send, allow: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [(b"allow", allow.encode("latin-1"))],
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": False})
