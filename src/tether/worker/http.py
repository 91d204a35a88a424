"""An ASGI app served by uvicorn inside the caller's event loop (``tether serve``, and a
worker's probe endpoint), stopped by the caller rather than by uvicorn's signal handlers.

uvicorn's own handlers re-raise the signal once shut down, so a graceful stop would exit as
killed, and they would take SIGTERM/SIGINT from the worker, which drains on them. Needs the
``server`` extra (uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

from tether.core.errors import ConfigurationError


def server_class() -> type[Any]:
    """A ``uvicorn.Server`` subclass that leaves signals alone; ``stop()``: shut down
    gracefully, a second time: at once."""
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - the server extra is missing
        raise ConfigurationError(
            "serving HTTP needs uvicorn: pip install 'tether[server]'"
        ) from exc

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def stop(self) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

    return Server


class Served:
    """An app being served: ``port`` (the bound one, when 0 was asked), ``url``, ``stop()``."""

    def __init__(self, server: Any, task: asyncio.Task[None], host: str, port: int) -> None:
        self.server = server
        self.task = task
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self.server.stop()
        await asyncio.gather(self.task, return_exceptions=True)


BACKLOG = 2048
"""Connections the kernel queues before they are accepted (uvicorn's default)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port). Raises ConfigurationError
    when the address cannot be bound (in use, not this machine's).

    The protocol is named (``IPPROTO_TCP``, as ``getaddrinfo`` gives it to uvicorn's own
    sockets): asyncio turns Nagle's algorithm off only on accepted sockets whose ``proto``
    says TCP, and with it on each small response waited for the client's delayed ACK (a GET
    of a run took 44 ms instead of 0.6)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn binds
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (is the port in use?)"
        ) from exc
    sock.setblocking(False)
    return sock


async def serve(app: Any, host: str, port: int, **config: Any) -> Served:
    """Bind ``host:port`` and serve ``app`` on a task of this loop; returns once listening.
    Raises ConfigurationError when it cannot listen (port in use, bad address)."""
    import uvicorn

    sock = bind(host, port)
    cfg = uvicorn.Config(app, **{"log_level": "warning", **config})
    server = server_class()(cfg)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn sets a flag
        await asyncio.sleep(0.02)
    if task.done():
        sock.close()
        exc = task.exception() if not task.cancelled() else None
        raise ConfigurationError(
            f"cannot serve HTTP on {host}:{port}: "
            + (str(exc) if exc else "it stopped while starting (see the messages above)")
        )
    return Served(server, task, host, int(sock.getsockname()[1]))
