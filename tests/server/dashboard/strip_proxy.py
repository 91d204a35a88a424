"""A reverse proxy that serves a backend under a path and strips it before passing requests
on (nginx's ``location /tether/ { proxy_pass http://backend/; }``), streaming responses (the
dashboard's event streams go through it). An ASGI app: serve it with uvicorn."""

from __future__ import annotations

from typing import Any

import httpx

HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"host", b"content-length"}


class StripProxy:
    def __init__(self, backend: str, prefix: str) -> None:
        self.backend = backend.rstrip("/")
        self.prefix = prefix
        self.client: httpx.AsyncClient | None = None
        self.paths: list[str] = []
        """Every path the proxy was asked for, as the browser asked for it."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    self.client = httpx.AsyncClient(timeout=None)
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    if self.client is not None:
                        await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        self.paths.append(path)
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            await _answer(send, 404, b"not under the proxied path")
            return
        rest = path[len(self.prefix) :] or "/"
        query = scope.get("query_string", b"").decode()
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        assert self.client is not None
        url = f"{self.backend}{rest}" + (f"?{query}" if query else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        response = await self.client.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def _answer(send: Any, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": text})
