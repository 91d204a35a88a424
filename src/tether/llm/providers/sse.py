"""A Server-Sent Events reader for streamed model answers."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


async def sse_events(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """Server-Sent Events from a stream of lines: ``event:``/``data:``/``id:`` fields, ``:``
    comments, multi-line data joined by newlines, one event per blank line. Ends at the
    OpenAI-style ``data: [DONE]`` sentinel or at the end of the stream."""
    event = ""
    last_id: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                joined = "\n".join(data)
                if joined == "[DONE]":
                    return
                yield SseEvent(event or "message", joined, last_id)
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
    if data and (joined := "\n".join(data)) != "[DONE]":
        yield SseEvent(event or "message", joined, last_id)
