"""Serve under a path prefix whether the proxy in front strips the prefix or passes it on.

``tether serve --root-path /tether`` says the server is reached at ``https://host/tether/...``.
uvicorn puts the root path in front of every request's path (the ASGI convention: ``path`` is
the full path) and Starlette routes on what follows it. A proxy that strips the prefix (nginx
with a trailing ``/`` on ``proxy_pass``) sends ``/v1/runs``: uvicorn makes it
``/tether/v1/runs`` and it is found. A proxy that passes the path on unchanged (Traefik, most
Kubernetes ingresses, nginx without the trailing ``/``) sends ``/tether/v1/runs``, which uvicorn
makes ``/tether/tether/v1/runs``: every route answered 404. ``UnstrippedPrefix`` takes the
second copy off, so one flag serves both kinds of proxy; a server that does not put the root
path in front (older ASGI servers) needs nothing and gets nothing changed.

``route_path(scope)`` is the path below the root path, what routing and the request limits look
at (a path check against ``scope["path"]`` alone misses every rooted request).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def route_path(scope: Scope) -> str:
    """The request's path below the root path (``scope["path"]`` when it has none)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


class UnstrippedPrefix:
    """ASGI middleware: a request whose path still carries the root path is served as if the
    proxy had stripped it (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root: str = scope.get("root_path", "")
            path: str = scope.get("path", "")
            doubled = root + root
            if root and (path == doubled or path.startswith(doubled + "/")):
                scope = dict(scope)
                scope["path"] = path[len(root) :]
                raw = scope.get("raw_path")
                prefix = root.encode("ascii")
                if isinstance(raw, bytes) and raw.startswith(prefix + prefix):
                    scope["raw_path"] = raw[len(prefix) :]
        await self.app(scope, receive, send)
