"""In-process fan-out of live run events to subscribers (the persisted log is in the store)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from tether.core.lifecycle import RunStatus
from tether.store.live import RELAYED, LiveChannel
from tether.store.types import Event

log = logging.getLogger("tether.events")

Hop = tuple[RunStatus | None, RunStatus, str, str]
"""One lifecycle transition as the store records it: (from, to, actor, reason)."""

LIVE_ONLY = frozenset({"step_started", "node_started", "node_finished", "model_token"})
"""Streamed live, not persisted: their writes are already in the checkpoints (see history), and
a streamed model's tokens are in its ``model_call`` event's answer once the call ends."""

END_OF_STREAM = "stream_end"


def lifecycle_data(src: RunStatus | None, dst: RunStatus, reason: str) -> dict[str, Any]:
    """The payload of a "lifecycle" event: the hop it records and why."""
    return {"from": src.value if src is not None else None, "to": dst.value, "reason": reason}


def lifecycle_event(
    run_id: str, at: float, src: RunStatus | None, dst: RunStatus, reason: str
) -> Event:
    """A "lifecycle" event written outside a running loop (create, fork, resume, cancel): the
    store numbers it (seq 0) and it belongs to no step or node."""
    return Event(run_id, 0, "lifecycle", at, None, None, lifecycle_data(src, dst, reason))


def lifecycle_events(run_id: str, at: float, hops: Iterable[Hop]) -> list[Event]:
    """One "lifecycle" event per hop, each carrying the hop's own reason."""
    return [lifecycle_event(run_id, at, src, dst, reason) for src, dst, _, reason in hops]


class EventBus:
    """Subscribers per run in this process; with a ``remote`` channel (the store's, when it
    can carry live events between processes: ``store.live``) the relayed live events go to
    the other processes too, and theirs come in here once ``listen_remote`` was called."""

    def __init__(self) -> None:
        self._subs: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._observers: list[Callable[[Event], None]] = []
        self.remote: LiveChannel | None = None
        self._remote_waited = False

    def observe(self, observer: Callable[[Event], None]) -> None:
        """Show ``observer`` every event of every run this process executes, live-only ones
        included (process metrics: ``tether.observability.prometheus``). The run loop then
        emits its live step and node events for every run; an observer must be quick (one that
        raises is logged and skipped). Events relayed from other processes are not shown (they
        count there)."""
        self._observers.append(observer)

    def relay(self, ev: Event) -> None:
        """Send a live-only event to the other processes (the relayed kinds only)."""
        if self.remote is not None and ev.type in RELAYED:
            self.remote.send(ev)

    def wants_relay(self, type: str) -> bool:
        return self.remote is not None and type in RELAYED

    async def listen_remote(self, timeout: float) -> bool:
        """Hear other processes' live events from now on (waiting up to ``timeout`` seconds
        for the channel); whether they will be heard."""
        if self.remote is None:
            return False
        self.remote.listen()
        waited, self._remote_waited = self._remote_waited, True
        return await self.remote.listening(0.0 if waited else timeout)  # waits only once

    async def sync_remote(self) -> None:
        """Wait until what other processes sent so far was delivered here (a barrier)."""
        if self.remote is not None:
            await self.remote.sync()

    def deliver_remote(self, ev: Event) -> None:
        """An event another process sent: for this process's subscribers of its run."""
        self._deliver(ev)

    def has_subscribers(self, run_id: str) -> bool:
        return bool(self._observers) or run_id in self._subs

    def publish(self, ev: Event) -> None:
        self.show_observers(ev)
        self._deliver(ev)

    def show_observers(self, ev: Event) -> None:
        """Show ``ev`` to the observers only: an event committed outside a running loop (a
        cancel's lifecycle hop), which the run's subscribers read from the store."""
        for observer in self._observers:
            try:
                observer(ev)
            except Exception:  # an observer's bug never stops a run
                log.exception("an event observer failed on a %r event", ev.type)

    def _deliver(self, ev: Event) -> None:
        subs = self._subs.get(ev.run_id)
        if subs:
            for q in subs:
                q.put_nowait(ev)

    def subscribe(self, run_id: str) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._subs[run_id].add(q)
        return q

    def unsubscribe(self, run_id: str, q: asyncio.Queue[Event]) -> None:
        subs = self._subs.get(run_id)
        if subs is not None:
            subs.discard(q)
            if not subs:
                del self._subs[run_id]
