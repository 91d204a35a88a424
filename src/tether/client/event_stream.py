"""A run's events from a server: the SSE stream, resumed after a dropped connection with
``Last-Event-ID`` (no event missed, none seen twice), or pages polled when streaming is not
possible (a proxy that buffers, a server without the route)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tether.client.errors import ServerBusyError, ServerError, ServerUnavailableError
from tether.client.http import GATEWAY, Http, segment
from tether.client.models import Event, Page, Run
from tether.client.sse import SseMessage, SseParser, parse_lines
from tether.core.sse_lines import sse_lines

__all__ = ["StreamUnsupported", "poll_events", "stream_events", "stream_run_changes"]

END = "end"


class StreamUnsupported(ServerError):
    """The server answered the stream route with something that is not an event stream."""


class Breaks:
    """The breaks in a row of a stream being reopened: it gives up after ``attempts`` of them
    that also span ``outage`` seconds (a server restarting is waited for that long) once the
    server has answered the client (``Http.answered``); before that (a wrong URL, a server
    that was never up) after ``attempts`` breaks, as any call."""

    def __init__(self, http: Http, outage: float) -> None:
        self.http = http
        self.attempts = http.retry.max_attempts
        self.outage = outage
        self.count = 0
        self.since: float | None = None

    def delivered(self) -> None:
        self.count, self.since = 0, None

    def broke(self) -> bool:
        """Count one break; True when the stream should be given up."""
        now = time.monotonic()
        self.count += 1
        self.since = now if self.since is None else self.since
        waited = now - self.since
        reached = self.http.answered
        return self.count >= self.attempts and (not reached or waited >= self.outage)

    def said(self) -> str:
        span = time.monotonic() - (self.since or time.monotonic())
        return f"{self.count} times in a row over {span:.1f} s"


def reopen_after(exc: ServerError, http: Http) -> float | None:
    """Whether a stream that failed with ``exc`` is reopened: the seconds to wait first when
    the server asked for them (429 ``Retry-After``), None for the usual backoff; ``exc``
    itself is raised when it is no reason to reopen (a refusal, a stream the server cannot
    give, a Retry-After longer than the client waits)."""
    if isinstance(exc, ServerUnavailableError) or (
        exc.status in GATEWAY and not isinstance(exc, StreamUnsupported)
    ):
        return None
    if isinstance(exc, ServerBusyError) and not http.retry.retry_after_too_long(exc.retry_after):
        return exc.retry_after
    raise exc


def event_of(msg: SseMessage) -> Event:
    try:
        body: Any = json.loads(msg.data) if msg.data else {}
    except json.JSONDecodeError:
        body = {"data": {"text": msg.data}}
    if not isinstance(body, dict):
        body = {"data": {"value": body}}
    ev = Event.from_json(body)
    # the frame's own seq; the SSE id only where the body has none. An event without an id
    # inherits the last one (the SSE rule for lastEventId), so a live-only event (seq 0:
    # node progress, a model's tokens) would pass for the stored event before it and be
    # dropped as already delivered
    if "seq" not in body and msg.id and msg.id.isdigit():
        ev.seq = int(msg.id)
    if not ev.kind:
        ev.kind = msg.event
    return ev


async def stream_events(
    http: Http, run_id: str, after: int = 0, outage: float = 0.0
) -> AsyncIterator[Event]:
    """The run's events after ``after`` as the server streams them, until its ``end``
    event (the run finished and every event was sent). A broken connection is reopened with
    ``Last-Event-ID`` (jittered backoff; ``ServerUnavailableError`` once the client's retry
    attempts failed in a row without an event, over at least ``outage`` seconds)."""
    last = after
    breaks = Breaks(http, outage)
    path = f"/v1/runs/{segment(run_id, 'run_id')}/events/stream"
    while True:
        headers = {"accept": "text/event-stream", "cache-control": "no-cache"}
        if last:
            headers["last-event-id"] = str(last)
        try:
            async with http.stream(path, headers=headers) as resp:
                ctype = resp.headers.get("content-type", "")
                if not ctype.startswith("text/event-stream"):
                    raise StreamUnsupported(
                        f"GET {path} answered {ctype or 'no content type'}, not an event stream",
                        status=resp.status_code,
                    )
                async for msg in parse_lines(sse_lines(resp.aiter_text()), SseParser()):
                    if msg.event == END:
                        return
                    ev = event_of(msg)
                    if ev.seq and ev.seq <= last:
                        continue  # already delivered before a reconnect
                    breaks.delivered()
                    last = ev.seq or last
                    yield ev
            pause = None  # the stream ended without its end event: reconnect
        except ServerError as exc:  # it broke, the server out of reach or busy: reconnect
            pause = reopen_after(exc, http)
        if breaks.broke():
            raise ServerUnavailableError(
                f"the event stream of run {run_id} broke {breaks.said()} without delivering "
                f"an event (last event {last})"
            )
        await asyncio.sleep(http.retry.backoff(breaks.count) if pause is None else pause)


async def poll_events(
    page: Callable[[int], Awaitable[Page]],
    finished: Callable[[], Awaitable[bool]],
    after: int = 0,
    *,
    follow: bool = True,
    interval: float = 0.25,
) -> AsyncIterator[Event]:
    """The events after ``after``, page by page (``page(after)``); with ``follow``, polled
    until ``finished()`` says the run is done and no event is left."""
    last = after
    while True:
        got = await page(last)
        for ev in got.items:
            if ev.seq > last:
                last = ev.seq
                yield ev
        if got.next_cursor is not None and got.items:
            continue
        if not follow:
            return
        if await finished():
            tail = await page(last)  # events committed between the page and the check
            for ev in tail.items:
                if ev.seq > last:
                    last = ev.seq
                    yield ev
            if not tail.items:
                return
            continue
        await asyncio.sleep(interval)


async def stream_run_changes(http: Http, outage: float = 0.0) -> AsyncIterator[Run]:
    """The tenant's runs as they appear and change (``GET /v1/stream/runs``): the newest ones
    first, then one item per change (status, step). A dropped stream is reopened (for at
    least ``outage`` seconds of breaks in a row); what the server sends again then (its
    opening snapshot) is not repeated here."""
    seen: dict[str, tuple[str, int, float]] = {}
    breaks = Breaks(http, outage)
    while True:
        try:
            async with http.stream("/v1/stream/runs", headers={"accept": "text/event-stream"}) as r:
                ctype = r.headers.get("content-type", "")
                if not ctype.startswith("text/event-stream"):
                    raise StreamUnsupported(
                        f"GET /v1/stream/runs answered {ctype or 'no content type'}, "
                        "not an event stream",
                        status=r.status_code,
                    )
                async for msg in parse_lines(sse_lines(r.aiter_text()), SseParser()):
                    try:
                        body = json.loads(msg.data) if msg.data else None
                    except json.JSONDecodeError:
                        continue
                    if not isinstance(body, dict) or "run_id" not in body:
                        continue
                    run = Run.from_json(body)
                    mark = (str(run.status), run.step, run.updated_at)
                    breaks.delivered()
                    if seen.get(run.run_id) == mark:
                        continue
                    seen[run.run_id] = mark
                    yield run
            pause = None
        except ServerError as exc:
            pause = reopen_after(exc, http)
        if breaks.broke():
            raise ServerUnavailableError(
                f"the run-change stream broke {breaks.said()} without a change"
            )
        await asyncio.sleep(http.retry.backoff(breaks.count) if pause is None else pause)
