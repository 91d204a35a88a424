"""The SQL side of batched submits (``pg_submit_batch``): one statement that writes many runs,
and its parameters.

The runs are one multi-row insert (``ON CONFLICT DO NOTHING``: a run whose id or idempotency
key exists is not written); their checkpoints, transitions, events and NOTIFY wake-ups are
selected ``FROM`` its ``RETURNING``, so nothing of a refused run is written. Every value
travels in column arrays (``unnest``), built as array literals (psycopg adapts lists ~10x
slower), so the statement text is the same for any batch size and is prepared once per
connection. Runs claimable now are announced once per queue and batch, not once per run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.core.lifecycle import RunStatus
from tether.core.serde import dumps
from tether.store.pg_commit import text_array
from tether.store.rows import CHECKPOINT_COLUMNS, RUN_COLUMNS, checkpoint_params, run_params
from tether.store.types import Checkpoint, Event, RunRecord
from tether.store.wakeup import payload

Hops = Sequence[tuple[RunStatus | None, RunStatus, str, str]]

_RUN_TYPES = ("text", "text", "text", "bytea", "bigint", "bytea", "bytea", "bytea", "text",
              "bigint", "text", "text", "text", "bigint", "float8", "float8", "float8", "bigint",
              "bytea", "text", "text", "bigint", "text", "float8")  # fmt: skip
_CP_TYPES = ("bigint", "bytea", "bytea", "bytea", "bytea", "float8", "bytea")
_TR_TYPES = ("text", "bigint", "text", "text", "float8", "text", "text")
_EV_TYPES = ("text", "bigint", "text", "float8", "bigint", "text", "bytea")


def _array(kind: str, values: Sequence[Any]) -> str:
    """A PostgreSQL array literal of ``values`` (None is NULL) for a column of type ``kind``."""
    if kind == "text":
        return text_array(list(values))
    if kind == "bytea":
        items = ["NULL" if v is None else '"\\\\x' + bytes(v).hex() + '"' for v in values]
    elif kind == "bigint":
        items = ["NULL" if v is None else str(int(v)) for v in values]
    else:
        items = ["NULL" if v is None else repr(float(v)) for v in values]
    return "{" + ",".join(items) + "}"


def _unnest(types: Sequence[str], names: Sequence[str]) -> str:
    args = ", ".join(f"%s::{t}[]" for t in types)
    return f"unnest({args}) AS x({', '.join(names)})"


def statement(p: str, channel: str) -> str:
    """The batch statement for a table prefix ``p`` and NOTIFY ``channel`` (psycopg
    placeholders; parameters: ``params``). Returns one row: the inserted run ids (or NULL)."""
    cp_names = [f"cp_{c}" for c in CHECKPOINT_COLUMNS[1:]]
    b_names = [*RUN_COLUMNS, *cp_names, "wake"]
    b_types = [*_RUN_TYPES, *_CP_TYPES, "text"]
    run_cols = ", ".join(RUN_COLUMNS)
    cp_cols = ", ".join(CHECKPOINT_COLUMNS)
    cp_set = ", ".join(f"{c} = excluded.{c}" for c in CHECKPOINT_COLUMNS[2:])
    b_args = ", ".join(f"%s::{t}[]" for t in b_types)
    return (
        f"WITH b AS (SELECT * FROM unnest({b_args}) WITH ORDINALITY AS b({', '.join(b_names)}, "
        "ord)), "
        f"r AS (INSERT INTO {p}runs ({run_cols}) SELECT {run_cols} FROM b ORDER BY ord "
        "ON CONFLICT DO NOTHING RETURNING run_id), "
        f"c AS (INSERT INTO {p}checkpoints ({cp_cols}) SELECT b.run_id, "
        f"{', '.join('b.' + n for n in cp_names)} FROM b JOIN r USING (run_id) "
        f"ON CONFLICT (run_id, step) DO UPDATE SET {cp_set}), "
        f"t AS (INSERT INTO {p}transitions (run_id, seq, src, dst, ts, actor, reason) "
        "SELECT x.run_id, x.seq, x.src, x.dst, x.ts, x.actor, x.reason FROM "
        f"{_unnest(_TR_TYPES, ('run_id', 'seq', 'src', 'dst', 'ts', 'actor', 'reason'))} "
        "JOIN r USING (run_id)), "
        f"e AS (INSERT INTO {p}events (run_id, seq, type, ts, step, node, data) "
        "SELECT x.run_id, x.seq, x.type, x.ts, x.step, x.node, x.data FROM "
        f"{_unnest(_EV_TYPES, ('run_id', 'seq', 'type', 'ts', 'step', 'node', 'data'))} "
        "JOIN r USING (run_id)), "
        f"n AS (SELECT pg_notify('{channel}', b.wake) FROM b JOIN r USING (run_id) "
        "WHERE b.wake IS NOT NULL) "
        "SELECT (SELECT array_agg(run_id) FROM r), (SELECT count(*) FROM n)"
    )


@dataclass(slots=True)
class Submit:
    """One queued ``create_run``: the run row as it will be stored, and who waits for it."""

    run: RunRecord
    checkpoint: Checkpoint
    transitions: Hops
    events: Sequence[Event]
    now: float
    claimable: bool
    done: asyncio.Future[tuple[RunRecord, bool]] = field(repr=False)
    row: tuple[Any, ...] = ()
    size: int = 0

    def __post_init__(self) -> None:
        run = self.run
        p = run_params(run)
        self.row = (*p[:15], self.now, self.now, run.event_seq + len(self.events), *p[18:])
        self.size = len(p[3] or b"") + len(p[18] or b"")


def params(batch: Sequence[Submit]) -> tuple[str, ...]:
    """The statement's parameters (column arrays) for ``batch``."""
    runs: list[tuple[Any, ...]] = []
    cps: list[tuple[Any, ...]] = []
    wakes: list[str | None] = []
    trs: list[tuple[Any, ...]] = []
    evs: list[tuple[Any, ...]] = []
    for s in batch:
        run, cp, now = s.run, s.checkpoint, s.now
        runs.append(s.row)
        cps.append(checkpoint_params(run.run_id, cp, now)[1:])  # the columns after run_id
        # a run claimable now is announced as its queue's (0.0: now): one notification per
        # queue and batch (PostgreSQL drops a transaction's duplicates), not one per run
        at = run.available_at if run.available_at > now else 0.0
        wakes.append(payload(run.queue, at) if s.claimable else None)
        for i, (src, dst, actor, reason) in enumerate(s.transitions, start=1):
            trs.append((run.run_id, i, src.value if src is not None else None, dst.value, now,
                        actor, reason))  # fmt: skip
        for i, ev in enumerate(s.events, start=1):
            evs.append((run.run_id, run.event_seq + i, ev.type, float(ev.ts or now), ev.step,
                        ev.node, dumps(ev.data)))  # fmt: skip
    cols = [*zip(*runs, strict=True)] if runs else [()] * len(_RUN_TYPES)
    cp_cols = [*zip(*cps, strict=True)] if cps else [()] * len(_CP_TYPES)
    tr_cols = [*zip(*trs, strict=True)] if trs else [()] * len(_TR_TYPES)
    ev_cols = [*zip(*evs, strict=True)] if evs else [()] * len(_EV_TYPES)
    return (
        *(_array(t, c) for t, c in zip(_RUN_TYPES, cols, strict=True)),
        *(_array(t, c) for t, c in zip(_CP_TYPES, cp_cols, strict=True)),
        text_array(wakes),
        *(_array(t, c) for t, c in zip(_TR_TYPES, tr_cols, strict=True)),
        *(_array(t, c) for t, c in zip(_EV_TYPES, ev_cols, strict=True)),
    )
