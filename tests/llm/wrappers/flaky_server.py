"""A real OpenAI-compatible HTTP server for resilience tests, scripted per test.

``FlakyServer`` serves ``POST /v1/chat/completions`` on 127.0.0.1 (a free port) with uvicorn in
the test's own event loop. Each request takes the next reply of its script (``then`` once the
script is used up): a chat completion, a 429 with ``Retry-After``, a 5xx, a slow answer, or a
malformed body. Streamed requests (``"stream": true``) get Server-Sent Events. It records
every request body and when it arrived, so tests can count calls and measure waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Reply:
    status: int = 200
    text: str = "ok"
    """The answer, when ``body`` is None (a well-formed chat completion is built from it)."""
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""


def ok(text: str = "ok") -> Reply:
    return Reply(text=text)


def slow(seconds: float, text: str = "slow but fine") -> Reply:
    return Reply(text=text, delay=seconds)


def rate_limited(retry_after: float | str) -> Reply:
    error = {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}
    return Reply(429, body=json.dumps(error).encode(), headers={"retry-after": str(retry_after)})


def server_error(status: int = 500) -> Reply:
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    return Reply(status, body=json.dumps(error).encode())


def malformed() -> Reply:
    return Reply(body=b'{"id": "x", "choices": [{"message": {"content": "cut off', headers={})


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-flaky",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 0},
    }


class FlakyServer:
    def __init__(self, script: Iterable[Reply] = (), *, then: Reply | None = None) -> None:
        self.script: deque[Reply] = deque(script)
        self.then = then or ok()
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self._closing = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def count(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.arrivals.append(time.monotonic())
        reply = self.script.popleft() if self.script else self.then
        if reply.delay:
            with contextlib.suppress(TimeoutError):  # never hold up the server's shutdown
                await asyncio.wait_for(self._closing.wait(), reply.delay)
        if reply.body is not None or reply.status != 200:
            return Response(reply.body or b"", reply.status, reply.headers, "application/json")
        if body.get("stream"):
            return StreamingResponse(
                self._events(body["model"], reply.text), 200, reply.headers, "text/event-stream"
            )
        return Response(
            json.dumps(completion(body["model"], reply.text)),
            200,
            reply.headers,
            "application/json",
        )

    async def _events(self, model: str, text: str) -> AsyncIterator[bytes]:
        words = text.split(" ")
        for word in [w + " " for w in words[:-1]] + words[-1:]:
            piece = {
                "id": "chatcmpl-flaky",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": word}}],
            }
            yield f"data: {json.dumps(piece)}\n\n".encode()
        done = {
            "id": "chatcmpl-flaky",
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode()

    async def start(self) -> FlakyServer:
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.005)
        return self

    async def stop(self) -> None:
        self._closing.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    async def __aenter__(self) -> FlakyServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
