"""A Server-Sent Events parser (the WHATWG ``text/event-stream`` rules), pure: lines in,
messages out. Comments (``: ping`` heartbeats) are dropped; ``id`` is remembered across
messages, as a browser does, so a reconnect can send it as ``Last-Event-ID``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["SseMessage", "SseParser", "parse_lines"]


@dataclass(frozen=True, slots=True)
class SseMessage:
    event: str
    data: str
    id: str | None
    retry: int | None = None


class SseParser:
    """Feed it lines (without their line ending); it returns a message at each blank line."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = ""
        self._data: list[str] = []
        self._retry: int | None = None
        self._id_seen = False

    def feed(self, line: str) -> SseMessage | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
                self._id_seen = True
        elif name == "retry" and value.isascii() and value.isdigit():  # not "²", "٣"
            self._retry = int(value)
        return None

    def _dispatch(self) -> SseMessage | None:
        if not self._data:  # no data line: nothing to dispatch (an event name alone is dropped)
            self._event, self._id_seen = "", False
            return None
        msg = SseMessage(self._event or "message", "\n".join(self._data), self.last_id, self._retry)
        self._event, self._data, self._retry, self._id_seen = "", [], None, False
        return msg


async def parse_lines(lines: AsyncIterator[str], parser: SseParser) -> AsyncIterator[SseMessage]:
    """The messages of a stream of lines (an ``httpx`` response's ``aiter_lines()``)."""
    async for line in lines:
        msg = parser.feed(line.rstrip("\r"))
        if msg is not None:
            yield msg
