"""The live-event channel of a PostgreSQL schema (``store.live``): ``NOTIFY`` batches.

``send`` queues an event; the queue goes out ``FLUSH`` seconds after its first event, as JSON
payloads of at most ``MAX_PAYLOAD`` bytes (PostgreSQL's limit is 8,000) sent by
``pg_notify`` on a pooled autocommit connection, once (no retry: live events are best
effort). Each payload names the process that sent it, so a process never hears itself (its own
subscribers got the events from its bus). ``listen`` opens a LISTEN connection
(``store.pg_listen``) on first use; what it hears goes to ``deliver``. ``sync`` is a barrier:
it returns once everything sent before it was heard (a follower calls it before reading a
step, so the step's tokens come first).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg

from tether.store.live import Deliver
from tether.store.pg_listen import PgListener
from tether.store.types import Event

log = logging.getLogger("tether.store")

FLUSH = 0.01
"""Seconds a queued event waits for others to share its notification."""
MAX_PAYLOAD = 7000
"""Bytes of JSON per notification."""
MAX_QUEUED = 10_000
"""Events held while a send is slow; more are dropped (one warning)."""
_PLAIN = re.compile(r"[a-z0-9_]{1,40}")


def live_channel_for(schema: str) -> str:
    """The NOTIFY channel of a schema's live events (a plain identifier, at most 63 bytes)."""
    if _PLAIN.fullmatch(schema):
        return f"tether_live_{schema}"
    return "tether_live_" + hashlib.sha256(schema.encode()).hexdigest()[:24]


def payloads(origin: str, events: list[Event]) -> Iterator[str]:
    """``events`` as JSON payloads of at most ``MAX_PAYLOAD`` bytes (an event too large for
    one alone is left out: a token never is)."""
    batch: list[str] = []
    size = 0
    head = f'{{"o":"{origin}","e":['
    for ev in events:
        item = json.dumps(
            [ev.run_id, ev.type, ev.ts, ev.step, ev.node, ev.data],
            separators=(",", ":"),
            default=str,
        )
        if len(head) + len(item) + 2 > MAX_PAYLOAD:
            continue
        if batch and size + len(item) + 1 + len(head) + 2 > MAX_PAYLOAD:
            yield head + ",".join(batch) + "]}"
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 1
    if batch:
        yield head + ",".join(batch) + "]}"


def parse(text: str, origin: str) -> list[Event]:
    """The events of a payload another process sent (none from ``origin``, none unreadable)."""
    try:
        doc = json.loads(text)
        if doc.get("o") == origin:
            return []
        return [
            Event(str(r), 0, str(t), float(ts), int(step), node, dict(data))
            for r, t, ts, step, node, data in doc["e"]
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


Connect = Callable[[], AbstractAsyncContextManager[Any]]


class PgLiveChannel:
    """One process's end of a schema's live channel (``store.live.LiveChannel``)."""

    def __init__(
        self, dsn: str, schema: str, connect: Connect, deliver: Deliver, connect_timeout: float
    ) -> None:
        self.dsn = dsn
        self.channel = live_channel_for(schema)
        self.origin = secrets.token_hex(8)
        self._connect = connect
        self._deliver = deliver
        self._connect_timeout = connect_timeout
        self._queue: list[Event] = []
        self._flushing: asyncio.TimerHandle | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._sending: asyncio.Task[None] | None = None
        self._listener: PgListener | None = None
        self._warned = False
        self._mark = f"barrier:{self.origin}:"
        self._barriers: dict[str, asyncio.Future[None]] = {}
        self._unsent: asyncio.Future[None] | None = None

    # -- sending -------------------------------------------------------------------------
    def send(self, ev: Event) -> None:
        if len(self._queue) >= MAX_QUEUED:
            self._warn(f"more than {MAX_QUEUED} live events queued; dropping")
            return
        self._queue.append(ev)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().call_later(FLUSH, self._flush)

    @property
    def pending(self) -> bool:
        return bool(self._queue) or self._flushing is not None or bool(self._sends)

    async def flush(self) -> None:
        """Return once every event queued before the call has gone out: twice at most (the
        send in flight, then the queue), never chasing what other runs keep queueing."""
        for _ in range(2):
            if self._flushing is not None:
                self._flushing.cancel()
            self._flush()
            if not self._sends:
                return
            await asyncio.gather(*self._sends, return_exceptions=True)

    def _flush(self) -> None:
        """Send the queue, unless a send is in flight: one at a time, so a stalled server
        (or a busy pool) holds one pooled connection for live events and a queue bounded by
        ``MAX_QUEUED``, not a task per flush that would all take their turn at the pool ahead
        of the store's own statements once it answers again."""
        self._flushing = None
        if self._sending is not None:
            return  # the queue goes out when that send is done (``_sent``)
        events, self._queue = self._queue, []
        if events:
            task = asyncio.get_running_loop().create_task(self._send(events))
            self._sending = task
            self._sends.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        self._sending = None
        if self._queue and self._flushing is None:
            self._flushing = asyncio.get_running_loop().call_later(FLUSH, self._flush)

    async def _send(self, events: list[Event]) -> None:
        try:
            async with self._connect() as conn:
                for text in payloads(self.origin, events):
                    await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, text))
        except (psycopg.Error, OSError) as exc:
            self._warn(f"sending live events failed ({type(exc).__name__}: {exc}); dropped")

    def _warn(self, message: str) -> None:
        if not self._warned:  # once per channel: tokens are best effort
            self._warned = True
            log.warning("live events on %s: %s", self.channel, message)

    # -- hearing -------------------------------------------------------------------------
    def listen(self) -> None:
        if self._listener is None:
            self._listener = PgListener(
                self.dsn,
                self.channel,
                self._connect_timeout,
                heard=self._heard,
                missed=self._missed,
                what="live-event",
                meanwhile="live events from other processes are not heard until it is back",
            )
            self._listener.start()

    def _heard(self, text: str) -> None:
        if text.startswith(self._mark):  # our own barrier came back: everything before it too
            fut = self._barriers.pop(text[len(self._mark) :], None)
            if fut is not None and not fut.done():
                fut.set_result(None)
            return
        for ev in parse(text, self.origin):
            self._deliver(ev)

    def _missed(self) -> None:
        """Back after a lost connection: barriers sent meanwhile will never come back."""
        barriers, self._barriers = self._barriers, {}
        for fut in barriers.values():
            if not fut.done():
                fut.set_result(None)

    async def sync(self, timeout: float = 1.0) -> None:
        """Return once every event other processes sent before this call has been delivered
        (PostgreSQL delivers notifications in commit order: a barrier this channel sends and
        hears back comes after them). Concurrent calls share a barrier not yet sent."""
        if self._listener is None or not self._listener.listening.is_set():
            return
        fut = self._unsent
        if fut is None:
            fut = self._unsent = asyncio.get_running_loop().create_future()
            task = asyncio.get_running_loop().create_task(self._barrier(fut))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), timeout)

    async def _barrier(self, fut: asyncio.Future[None]) -> None:
        self._unsent = None
        nonce = secrets.token_hex(6)
        self._barriers[nonce] = fut
        try:
            async with self._connect() as conn:
                await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, self._mark + nonce))
        except (psycopg.Error, OSError):
            self._barriers.pop(nonce, None)
            if not fut.done():
                fut.set_result(None)

    async def listening(self, timeout: float) -> bool:
        if self._listener is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listener.listening.wait(), timeout)
        return self._listener.listening.is_set()

    async def close(self) -> None:
        await self.flush()
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
