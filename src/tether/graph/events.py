"""In-process fan-out of live run events to subscribers (the persisted log is in the store)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from tether.core.lifecycle import RunStatus
from tether.store.types import Event

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
