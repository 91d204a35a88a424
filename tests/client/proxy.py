"""A TCP proxy on 127.0.0.1 between a client and a server, that can drop connections: to
test what the client does when the network breaks (a real socket closes under it)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class Proxy:
    """Forwards 127.0.0.1:port -> upstream on a loop of its own thread.

    ``cut()`` closes every open connection now; ``freeze()`` makes every open connection go
    silent without closing (a peer that vanished); ``drop_responses = N`` makes the next N
    connections forward the request but close before the answer reaches the client;
    ``down = True`` (with ``cut()``) is a server restarting: every connection is closed at
    once (``refused`` counts them) until ``down = False``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop_responses = 0
        self.connections = 0
        self.down = False
        """While True the server behind is "down": each new connection is closed at once."""
        self.refused = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._frozen: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-proxy")
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("proxy did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.down:
            self.refused += 1
            writer.transport.abort()
            return
        drop = self.drop_responses > 0
        if drop:
            self.drop_responses -= 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._open.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: bool) -> None:
            try:
                while data := await src.read(65536):
                    if cut:
                        break  # the answer is lost on the way back
                    if dst in self._frozen or writer in self._frozen:
                        continue  # silently swallowed: the client hears nothing
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for w in (dst, writer, up_writer):
                    with contextlib.suppress(Exception):
                        w.close()

        await asyncio.gather(
            pipe(reader, up_writer, False), pipe(up_reader, writer, drop), return_exceptions=True
        )
        self._open.difference_update({writer, up_writer})

    def cut(self) -> int:
        """Close every open connection; returns how many sockets were closed."""

        async def close_all() -> int:
            n = len(self._open)
            for w in list(self._open):
                with contextlib.suppress(Exception):
                    w.transport.abort()
            return n

        return asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(30)

    def freeze(self) -> int:
        """Make every open connection silent (nothing forwarded, nothing closed)."""

        async def freeze_all() -> int:
            self._frozen.update(self._open)
            return len(self._open)

        return asyncio.run_coroutine_threadsafe(freeze_all(), self._loop).result(30)

    def close(self) -> None:
        def stop() -> None:
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(30)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
