"""Server-Sent Events: a run's events as they are committed, and the runs of a tenant as they
change.

A run's stream reads the persisted event log only (never the in-process bus's copies of
persisted events), after the last ``seq`` sent: each event goes out once, with ``id: <seq>``,
so a client that reconnects with ``Last-Event-ID`` gets exactly the events after it, none
missed, none twice. It looks at the run's head (one read) every ``poll`` seconds and reads
events only when the head's ``event_seq`` moved; in a server that executes the run itself
(embedded worker) the runtime's event bus wakes it at once, and the live-only events (a node
started, finished) are passed on without an id (they are not in the log); a streamed model's
tokens come too when a worker process runs the call, over the store's live channel
(``store.live``: PostgreSQL). When the run is
finished (COMPLETED, FAILED, CANCELLED) and every event is sent, an ``event: end`` closes
the stream. A ``: ping`` comment goes out after ``heartbeat`` seconds of silence. While the
store cannot be read (a database restart, a full disk) the stream stays open with its pings
and reads on from the last event sent once it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tether.core.lifecycle import FINISHED
from tether.graph.events import LIVE_ONLY
from tether.graph.runtime import Runtime
from tether.server import views
from tether.store.transient import first_line, unavailable
from tether.store.types import Event, RunRecord

PAGE = 500
REMOTE_READY = 5.0
"""Seconds a new stream waits for the live channel to hear other processes (once)."""
IDLE_AFTER = 2.0
"""Seconds without news after which a stream looks at the store less often..."""
IDLE_POLL = 0.1
"""...this often (still far under a heartbeat)."""
DOWN_POLL = 0.5
"""Seconds between two looks while the store cannot be read (each may wait out its retries)."""

log = logging.getLogger("tether.server")


def frame(data: Any, *, event: str | None = None, id: int | None = None) -> str:
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append(f"data: {_json(data)}")
    return "\n".join(lines) + "\n\n"


def _json(data: Any) -> str:
    """Compact JSON: orjson, or the standard library for what orjson refuses (an integer
    beyond 64 bits in a custom event)."""
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(data, separators=(",", ":"), default=str)


PING = ": ping\n\n"


def event_frame(ev: Event) -> str:
    return frame(views.event(ev), event=ev.type, id=ev.seq if ev.seq else None)


async def run_events(
    rt: Runtime, run_id: str, after: int, *, poll: float, heartbeat: float
) -> AsyncIterator[str]:
    store = rt.store
    wake = asyncio.Event()
    live: list[Event] = []
    q = rt.bus.subscribe(run_id)
    pump = asyncio.create_task(_pump(q, wake, live))
    last = after
    try:
        # a run executed by a worker process: its tokens come over the store's live channel
        remote = await rt.bus.listen_remote(REMOTE_READY)
        last_sent = last_news = time.monotonic()
        down: float | None = None  # since when the store could not be read
        yield ": stream of run " + run_id + "\n\n"
        while True:
            finished = False
            try:
                run = await store.get_run(run_id)
                finished = run.status in FINISHED
                if run.event_seq > last and remote:
                    # tokens a worker sent before the commit of these events are delivered first
                    await rt.bus.sync_remote()
                    _take(q, live)
                while run.event_seq > last:
                    page = await store.list_events(run_id, after_seq=last, limit=PAGE)
                    if not page:
                        break
                    # live-only events of this process (node started, a model's tokens) go out
                    # in the order things happened: before the logged events emitted after them
                    for ev in _merged(page, live):
                        yield event_frame(ev)
                        last = ev.seq or last
                    last_sent = last_news = time.monotonic()
            except Exception as exc:
                if not unavailable(exc):
                    raise
                # the store cannot be read now (a database restart, a full disk): the stream
                # stays open, heartbeats go on, and it reads on from ``last`` once it can
                finished = False
                if down is None:
                    down = time.monotonic()
                    log.warning(
                        "run %s: event stream waits for the store (%s)", run_id, first_line(exc)
                    )
            else:
                if down is not None:
                    log.info(
                        "run %s: event stream goes on, the store answered again after %.1f s",
                        run_id,
                        time.monotonic() - down,
                    )
                    down = None
            if live:
                sent, live[:] = list(live), []
                for ev in sent:
                    yield event_frame(ev)
                last_sent = time.monotonic()
            if finished:
                yield frame({"run_id": run_id, "status": run.status.value}, event="end")
                return
            now = time.monotonic()
            if now - last_sent >= heartbeat:
                yield PING
                last_sent = now
            wait = poll if now - last_news < IDLE_AFTER else max(poll, IDLE_POLL)
            if down is not None:
                wait = max(wait, DOWN_POLL)
            wait = min(wait, max(0.0, heartbeat - (now - last_sent)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)
            if wake.is_set():
                wake.clear()
                last_news = time.monotonic()
    finally:
        pump.cancel()
        rt.bus.unsubscribe(run_id, q)


def _merged(page: list[Event], live: list[Event]) -> list[Event]:
    """``page`` (logged events, in order) with the pending live events emitted before its last
    one slotted in by time (taken out of ``live``); later live events wait for the next page."""
    if not live or not page:
        return page
    cut = page[-1].ts
    early = [ev for ev in live if ev.ts <= cut]
    if not early:
        return page
    live[:] = [ev for ev in live if ev.ts > cut]
    out: list[Event] = []
    i = 0
    for ev in page:
        while i < len(early) and early[i].ts <= ev.ts:
            out.append(early[i])
            i += 1
        out.append(ev)
    out.extend(early[i:])
    return out


async def _pump(q: asyncio.Queue[Event], wake: asyncio.Event, live: list[Event]) -> None:
    """Bus traffic wakes the stream; live-only events are kept for it (persisted ones are
    read from the log)."""
    while True:
        _keep(await q.get(), live)
        _take(q, live)
        wake.set()


def _take(q: asyncio.Queue[Event], live: list[Event]) -> None:
    """What the bus queued so far, kept for the stream."""
    while not q.empty():
        _keep(q.get_nowait(), live)


def _keep(ev: Event, live: list[Event]) -> None:
    if ev.seq == 0 and ev.type in LIVE_ONLY and len(live) < 10_000:
        live.append(ev)


def _mark(run: RunRecord) -> tuple[str, int, float, int]:
    """What changes when a run changes: its status, step, update time, and its event count
    (a ``model_call`` event is how its tokens and cost grow)."""
    return (run.status.value, run.step, run.updated_at, run.event_seq)


CHANGES_BYTES = 1 << 20
"""Most bytes of ``event: run`` frames one look of the run-change stream sends (one frame at
least); the changes left over go out at the next look."""


class RunChanges:
    """What the run-change stream sends, one look at a time: ``look()`` reads the ``watch``
    newest runs of ``tenant`` and returns an ``event: run`` frame (oldest first) for each run
    that appeared or changed since it was last sent, up to ``max_bytes`` of them."""

    def __init__(
        self,
        rt: Runtime,
        tenant: str | None,
        *,
        watch: int = 200,
        max_bytes: int = CHANGES_BYTES,
        root: str = "",
    ) -> None:
        self.rt, self.tenant, self.watch, self.max_bytes = rt, tenant, watch, max_bytes
        self.root = root
        """The path the server is mounted under (the items' ``href``s start with it)."""
        self.seen: dict[str, tuple[str, int, float, int]] = {}

    async def look(self) -> list[str]:
        runs = await self.rt.store.list_runs(tenant=self.tenant, limit=self.watch)
        changed = [run for run in reversed(runs) if self.seen.get(run.run_id) != _mark(run)]
        frames: list[str] = []
        used = 0
        for run, item in zip(
            changed, await views.run_items(self.rt.store, changed, self.root), strict=True
        ):
            text = frame(item, event="run")
            size = len(text.encode())
            if frames and used + size > self.max_bytes:
                break  # not marked seen: it goes out at the next look
            frames.append(text)
            used += size
            self.seen[run.run_id] = _mark(run)
        if len(self.seen) > 4 * self.watch:
            keep = {r.run_id for r in runs}
            self.seen = {k: v for k, v in self.seen.items() if k in keep}
        return frames


async def run_changes(
    rt: Runtime,
    tenant: str | None,
    *,
    poll: float,
    heartbeat: float,
    watch: int = 200,
    max_bytes: int = CHANGES_BYTES,
    root: str = "",
) -> AsyncIterator[str]:
    """The ``watch`` newest runs of ``tenant``: one ``event: run`` for each at the start, then
    one for each run that appears or changes (status, step, events), at most ``max_bytes`` of
    them a look (``RunChanges``). Each item is the run as ``GET /v1/runs`` lists it (metadata,
    escalation and error bounded), usage (tokens, cost, calls) included, so a list kept up to
    date from this stream shows what a reload would (the usage of the changed runs is read in
    one query per look, only when something changed)."""
    changes = RunChanges(rt, tenant, watch=watch, max_bytes=max_bytes, root=root)
    last_sent = time.monotonic()
    yield ": run changes\n\n"
    down = False
    while True:
        try:
            frames = await changes.look()
        except Exception as exc:
            if not unavailable(exc):
                raise
            if not down:  # the store cannot be read now: the stream stays open, pinging
                log.warning("runs stream waits for the store (%s)", first_line(exc))
            down = True
        else:
            down = False
            for text in frames:  # oldest first: a list view inserts them in order
                yield text
                last_sent = time.monotonic()
        if time.monotonic() - last_sent >= heartbeat:
            yield PING
            last_sent = time.monotonic()
        await asyncio.sleep(max(poll, DOWN_POLL) if down else poll)
