"""Non-blocking capture of one pipe of a sandboxed process (and, under gVisor, the status lines
that travel on stderr)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from . import launcher as _launcher

__all__ = ["STATUS_LIMIT", "Stream"]

_READ_CHUNK = 64 * 1024
STATUS_LIMIT = 64 * 1024


class Stream:
    """Reads one pipe without blocking, keeping at most ``limit`` bytes.

    With ``demux`` (gVisor: the status travels on stderr), the leading status lines (prefixed
    with :data:`launcher.STATUS_MARK`, up to the user stage's) go to :attr:`header`, and the
    launcher's closing line (``"\\n" + STATUS_MARK + nonce + " "``, the nonce announced in the
    header) and everything after it go to :attr:`trailer`, bounded by ``trailer_limit``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        limit: int,
        on_overflow: Callable[[], None] | None,
        demux: bool = False,
        trailer_limit: int = 0,
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._limit = limit
        self._on_overflow = on_overflow
        self._closed = False
        self.buf = bytearray()
        self.truncated = False
        self.header = bytearray()
        self.trailer = bytearray()
        self._trailer_limit = trailer_limit
        self._pending: bytearray | None = bytearray() if demux else None
        self._key = b""  # the closing line's start, once the header told the nonce
        self._scan = bytearray()  # bytes held back: they may be the start of the key
        self._in_trailer = False
        self.done: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        if self._pending is not None:
            self._pending += data
            rest = self._take_header(self._pending)
            if rest is None:
                return
            self._pending = None
            data = rest
        self._route(data)

    def _take_header(self, buf: bytearray) -> bytes | None:
        """Moves complete status lines to :attr:`header` until the user stage's (only runsc and
        the launcher write before it: other lines, e.g. runsc's own, are output); returns the
        bytes after it, or None while the header may go on."""
        mark = _launcher.STATUS_MARK
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) <= STATUS_LIMIT:
                    return None
                break  # no status line is that long
            line = bytes(buf[: end + 1])
            del buf[: end + 1]
            if not line.startswith(mark):
                self._keep(line)
                continue
            self.header += line[len(mark) :]
            with contextlib.suppress(ValueError):
                item = json.loads(line[len(mark) :])
                if isinstance(item, dict):
                    if isinstance(item.get("nonce"), str) and item["nonce"]:
                        self._key = b"\n" + mark + item["nonce"].encode() + b" "
                    if item.get("stage") == "user" or "fatal" in item:
                        break  # the code runs from here on: nothing after this is ours
        return bytes(buf)

    def _route(self, data: bytes) -> None:
        if self._in_trailer:
            room = self._trailer_limit - len(self.trailer)
            self.trailer += data[: max(room, 0)]
            return
        if not self._key:
            self._keep(data)
            return
        self._scan += data
        at = self._scan.find(self._key)
        if at >= 0:
            self._keep(bytes(self._scan[:at]))
            rest = bytes(self._scan[at + len(self._key) :])
            self._scan.clear()
            self._in_trailer = True
            self._route(rest)
            return
        hold = len(self._key) - 1
        if len(self._scan) > hold:
            self._keep(bytes(self._scan[:-hold]))
            del self._scan[:-hold]

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        room = self._limit - len(self.buf)
        if len(data) <= room:
            self.buf += data
            return
        if room > 0:
            self.buf += data[:room]
        if not self.truncated:
            self.truncated = True
            if self._on_overflow is not None:
                self._on_overflow()

    def closing_status(self) -> dict[str, Any]:
        """The launcher's closing line (gVisor), or {} if it did not arrive whole."""
        if not self.trailer.endswith(b"\n"):
            return {}
        with contextlib.suppress(ValueError):
            item = json.loads(self.trailer)
            if isinstance(item, dict):
                return item
        return {}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        if self._pending is not None:  # the stream ended inside the header
            pending, self._pending = bytes(self._pending), None
            self._keep(pending)
        if self._scan:
            scan, self._scan = bytes(self._scan), bytearray()
            self._keep(scan)
        if not self.done.done():
            self.done.set_result(None)
