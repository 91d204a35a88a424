"""How the memory store keeps a checkpoint and an event: encoded, as a SQL backend stores them.

A commit encodes what it must keep once (a checkpoint's delta arrives already encoded:
``delta_blob``, the bytes the run loop measured; an event's data is written as ``dumps_record``
writes it) and a read decodes it, so every read hands out a detached copy with exactly what a
SQL backend gives back (JSON types), and a step's commit pays one encode instead of an encode
and a decode of each part. Reads are rare next to commits: a resume, ``history``, ``state_at``,
a fork, an event page.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tether.core import serde
from tether.store.types import Checkpoint, Event


class KeptCheckpoint(NamedTuple):
    """A checkpoint as the memory store holds it (``keep``; ``checkpoint`` reads it back)."""

    step: int
    delta: bytes
    rest: bytes
    """``[next_tasks, snapshot, barriers, meta]``, encoded together."""
    created_at: float
    has_snapshot: bool

    def checkpoint(self, run_id: str) -> Checkpoint:
        next_tasks, snapshot, barriers, meta = serde.loads(self.rest)
        return Checkpoint(
            run_id,
            self.step,
            serde.loads(self.delta),
            next_tasks,
            snapshot,
            barriers,
            self.created_at,
            meta,
        )


def keep(cp: Checkpoint, created_at: float) -> KeptCheckpoint:
    """``cp`` encoded, stamped ``created_at``."""
    blob = cp.delta_blob
    delta = blob if blob is not None else serde.dumps(cp.delta)
    snapshot, barriers, meta = cp.snapshot, cp.barriers, cp.meta
    rest = serde.dumps([cp.next_tasks, snapshot, barriers, meta])
    return KeptCheckpoint(cp.step, delta, rest, created_at, snapshot is not None)


class KeptEvent(NamedTuple):
    """An event as the memory store holds it: its data encoded (``event`` reads it back)."""

    seq: int
    type: str
    ts: float
    step: int | None
    node: str | None
    data: bytes

    def event(self, run_id: str) -> Event:
        return Event(run_id, self.seq, self.type, self.ts, self.step, self.node, self.decoded())

    def decoded(self) -> dict[str, Any]:
        data: dict[str, Any] = serde.loads(self.data)
        return data
