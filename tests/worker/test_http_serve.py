"""``tether.worker.http.serve``, the one way tether serves HTTP (``tether serve`` and a worker's
probe endpoint): accepted connections have Nagle's algorithm off, so a small response is sent
at once instead of waiting for the client's delayed ACK (44 ms a request when it was on)."""

from __future__ import annotations

import socket

import httpx
import pytest

from tether.core.errors import ConfigurationError
from tether.worker.http import bind, serve


async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_accepted_connections_send_small_responses_at_once(host: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    served = await serve(app, host, 0)
    try:
        async with httpx.AsyncClient(base_url=served.url) as client:
            assert (await client.get("/")).text == "ok"
            connections = list(served.server.server_state.connections)
            assert connections, "the server holds the client's keep-alive connection"
            for conn in connections:
                sock = conn.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert (await client.get("/")).text == "ok"  # and the connection is reused
    finally:
        await served.stop()


def test_bind_makes_a_tcp_socket_and_says_when_the_port_is_taken() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.type == socket.SOCK_STREAM
        with pytest.raises(ConfigurationError, match="is the port in use"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
