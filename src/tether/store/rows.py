"""Records <-> SQL rows, shared by every SQL backend.

Column order is fixed here once; statements in ``sql_base`` select and insert in this order. JSON
values travel as ``core.serde`` blobs (a checkpoint's delta and snapshot compressed when that
pays: ``blob_codec``); ``None`` is stored as SQL NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.core.json_copy import dumps_record
from tether.core.lifecycle import RunStatus
from tether.core.serde import dumps, loads
from tether.store.blob_codec import pack, pack_optional, unpack
from tether.store.types import Checkpoint, EffectRecord, Event, NodeWrite, RunRecord, Transition

Row = Sequence[Any]

RUN_COLUMNS = (
    "run_id", "workflow", "status", "input", "step", "result", "error", "escalation",
    "parent_run_id", "parent_step", "idempotency_key", "input_hash", "owner", "lease_token",
    "lease_expires_at", "created_at", "updated_at", "event_seq", "metadata", "thread_id", "queue",
    "priority", "tenant", "available_at",
)  # fmt: skip
CHECKPOINT_COLUMNS = (
    "run_id", "step", "delta", "next_tasks", "snapshot", "barriers", "created_at", "meta",
)  # fmt: skip
NODE_WRITE_COLUMNS = (
    "run_id", "step", "task_id", "node", "status", "writes", "goto", "interrupt", "resume",
    "created_at", "events",
)  # fmt: skip
EFFECT_COLUMNS = (
    "run_id", "key", "kind", "status", "request", "result", "error", "attempts", "created_at",
    "updated_at",
)  # fmt: skip
EVENT_COLUMNS = ("run_id", "seq", "type", "ts", "step", "node", "data")
TRANSITION_COLUMNS = ("run_id", "seq", "src", "dst", "ts", "actor", "reason")

STATUS: dict[str, RunStatus] = {s.value: s for s in RunStatus}


def enc(value: Any) -> bytes | None:
    return None if value is None else dumps(value)


def enc_record(value: Any) -> bytes | None:
    """``enc`` for what a run records about itself (events, errors, escalations): never
    refused (``json_copy.dumps_record``), so a failure is always recorded."""
    return None if value is None else dumps_record(value)


# -- runs ---------------------------------------------------------------------------------
def run_params(r: RunRecord) -> tuple[Any, ...]:
    return (
        r.run_id, r.workflow, r.status.value, enc(r.input), r.step, enc(r.result), enc(r.error),
        enc(r.escalation), r.parent_run_id, r.parent_step, r.idempotency_key, r.input_hash,
        r.owner, r.lease_token, r.lease_expires_at, r.created_at, r.updated_at, r.event_seq,
        dumps(r.metadata), r.thread_id, r.queue, r.priority, r.tenant, r.available_at,
    )  # fmt: skip


def row_to_run(row: Row) -> RunRecord:
    return RunRecord(
        row[0], row[1], STATUS[row[2]], loads(row[3]), row[4], loads(row[5]), loads(row[6]),
        loads(row[7]), row[8], row[9], row[10], row[11], row[12], row[13], row[14], row[15],
        row[16], row[17], loads(row[18]) or {}, row[19], row[20], row[21], row[22], row[23],
    )  # fmt: skip


# -- checkpoints ---------------------------------------------------------------------------
EMPTY_OBJECT = dumps({})


def checkpoint_params(run_id: str, cp: Checkpoint, created_at: float) -> tuple[Any, ...]:
    delta = cp.delta_blob if cp.delta_blob is not None else dumps(cp.delta)
    return (
        run_id, cp.step, pack(delta), dumps(cp.next_tasks), pack_optional(enc(cp.snapshot)),
        dumps(cp.barriers) if cp.barriers else EMPTY_OBJECT, created_at,
        dumps(cp.meta) if cp.meta else EMPTY_OBJECT,
    )  # fmt: skip


def row_to_checkpoint(row: Row) -> Checkpoint:
    return Checkpoint(
        row[0], row[1], loads(unpack(row[2])), loads(row[3]), loads(unpack(row[4])),
        loads(row[5]) or {}, row[6],
        loads(row[7]) or {},
    )  # fmt: skip


# -- node writes ---------------------------------------------------------------------------
def node_write_params(w: NodeWrite, created_at: float) -> tuple[Any, ...]:
    events = [[e.type, e.ts, e.node, e.data] for e in w.events] or None
    return (
        w.run_id, w.step, w.task_id, w.node, w.status, enc(w.writes), enc(w.goto),
        enc(w.interrupt), dumps(w.resume), created_at, enc(events),
    )  # fmt: skip


def row_to_node_write(row: Row) -> NodeWrite:
    run_id, step = row[0], row[1]
    events = [
        Event(run_id, 0, t, ts, step, node, data) for t, ts, node, data in loads(row[10]) or ()
    ]
    return NodeWrite(
        run_id, step, row[2], row[3], row[4], loads(row[5]), loads(row[6]), loads(row[7]),
        loads(row[8]) or [], row[9], events,
    )  # fmt: skip


# -- effects, events, transitions ----------------------------------------------------------
def row_to_effect(row: Row) -> EffectRecord:
    return EffectRecord(
        row[0], row[1], row[2], row[3], loads(row[4]), loads(row[5]), loads(row[6]), row[7],
        row[8], row[9],
    )  # fmt: skip


def event_params(run_id: str, seq: int, ev: Event, now: float) -> tuple[Any, ...]:
    return (run_id, seq, ev.type, float(ev.ts or now), ev.step, ev.node, dumps_record(ev.data))


def row_to_event(row: Row) -> Event:
    return Event(row[0], row[1], row[2], row[3], row[4], row[5], loads(row[6]) or {})


def row_to_transition(row: Row) -> Transition:
    src = STATUS[row[2]] if row[2] is not None else None
    return Transition(row[0], row[1], src, STATUS[row[3]], row[4], row[5], row[6])
