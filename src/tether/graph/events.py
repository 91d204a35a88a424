"""In-process fan-out of live run events to subscribers (the persisted log is in the store)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from tether.store.types import Event

LIVE_ONLY = frozenset({"step_started", "node_started", "node_finished"})
"""Streamed live, not persisted: their writes are already in the checkpoints (see history)."""

END_OF_STREAM = "stream_end"


class EventBus:
    def __init__(self) -> None:
        self._subs: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    def has_subscribers(self, run_id: str) -> bool:
        return run_id in self._subs

    def publish(self, ev: Event) -> None:
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
