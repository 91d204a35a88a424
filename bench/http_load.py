"""A lean HTTP/1.1 load generator for the server benches: keep-alive connections on asyncio
streams, JSON in, status and JSON out, nothing else.

The bench machine runs the server, PostgreSQL, the workers and the client on the same few
cores. httpx spends ~2.5 ms of CPU per request (its connection pool, headers, response
model), more than the server spends answering a submit, so with it the bench measured the
client. This one spends ~0.1 ms: what the figures show is the server's rate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


class Lane:
    """One keep-alive connection; ``post`` sends a request and reads its response."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        return self._streams

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        """(status, JSON body); a connection the server closed is reopened once."""
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        for attempt in range(2):
            reader, writer = await self._open()
            try:
                writer.write(head + data)
                return await _response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


async def _response(reader: asyncio.StreamReader) -> tuple[int, Any]:
    status = int((await reader.readuntil(b"\r\n")).split()[1])
    length = 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not supported by this load generator")
    payload = await reader.readexactly(length)
    return status, json.loads(payload) if payload else None


async def post_many(
    base: str, path: str, bodies: Callable[[int], Any], n: int, in_flight: int
) -> list[tuple[int, Any]]:
    """POST ``bodies(i)`` for i in 0..n-1 over ``in_flight`` connections; the answers in
    order."""
    out: list[tuple[int, Any]] = [(0, None)] * n
    todo = iter(range(n))
    lanes = [Lane(base) for _ in range(in_flight)]

    async def run(lane: Lane) -> None:
        for i in todo:
            out[i] = await lane.post(path, bodies(i))

    try:
        await asyncio.gather(*(run(lane) for lane in lanes))
    finally:
        for lane in lanes:
            await lane.close()
    return out
