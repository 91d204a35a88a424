"""A Server-Sent Events reader for streamed model answers."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from tether.core.sse_lines import sse_lines

__all__ = ["SseEvent", "SseReader", "sse_events", "sse_lines"]


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


class SseReader:
    """Server-Sent Events from a stream of lines: ``event:``/``data:``/``id:`` fields, ``:``
    comments, multi-line data joined by newlines, one event per blank line. Ends at the
    OpenAI-style ``data: [DONE]`` sentinel (``done`` is then True) or at the end of the
    stream: a stream that ends without its sentinel or its last event may have been cut off
    (a server or proxy that closed the connection mid-answer), which the reader of the
    answer must tell apart from an answer that ended."""

    def __init__(self, lines: AsyncIterable[str]) -> None:
        self.lines = lines
        self.done = False
        """Whether the stream ended with ``data: [DONE]``."""

    def __aiter__(self) -> AsyncIterator[SseEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SseEvent]:
        async for event in _parse(self.lines):
            if event.data == "[DONE]":
                self.done = True
                return
            yield event


def sse_events(lines: AsyncIterable[str]) -> SseReader:
    """The events of ``lines`` (see :class:`SseReader`)."""
    return SseReader(lines)


async def _parse(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    event = ""
    last_id: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id" and "\0" not in value:
            last_id = value
    if data:
        yield SseEvent(event or "message", "\n".join(data), last_id)
