"""A server (or a caching proxy in front of one) that hands back a cursor it already gave: the
client's "every page" readers stop with a ServerError instead of looping for ever."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tether.client import AsyncClient, Client
from tether.client.errors import ServerError

STEP = {"step": 1, "created_at": 1.0, "nodes": ["a"], "writes": {}}


class _SameCursor(BaseHTTPRequestHandler):
    """Every listing answers one page whose next cursor is always ``c1``; ``hits`` counts."""

    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        if type(self).hits > 50:  # the client under test looped: end it, the test fails
            self.send_error(500, "looped")
            return
        items: list[Any] = [STEP] if "/history" in self.path else []
        body = json.dumps({"items": items, "next_cursor": "c1"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def looping_server() -> Iterator[str]:
    _SameCursor.hits = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SameCursor)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_repeated_cursor_is_a_server_error_not_a_loop(looping_server: str) -> None:
    with Client(looping_server) as client:
        for read in (client.interrupts, client.approvals):
            _SameCursor.hits = 0
            with pytest.raises(ServerError, match="cursor 'c1' a second time"):
                read()
            assert _SameCursor.hits == 2  # the first page, the one that repeated its cursor


async def test_the_async_readers_stop_too(looping_server: str) -> None:
    async with AsyncClient(looping_server) as client:
        with pytest.raises(ServerError, match="a second time"):
            await client.interrupts()
        _SameCursor.hits = 0
        with pytest.raises(ServerError, match="a second time"):
            async for _step in client.history("r1"):
                pass
        assert _SameCursor.hits == 2
