"""PostgreSQL ``create_run`` in one round trip: one statement of data-modifying CTEs.

The portable ``create_run`` (``sql_store``) is a transaction of five to seven statements
(BEGIN, the run, the checkpoint, the transitions, the events, the NOTIFY, COMMIT), each a round
trip; a submit-heavy workload (a queue's producers, a fan-out of child runs) spent most of its
time there. Here the run row is inserted with ``ON CONFLICT DO NOTHING`` and every other write
selects ``FROM`` its ``RETURNING``: when the run id or the idempotency key already exists
nothing at all is written, and the caller reads the existing run (as the portable path does).
Transitions and events travel as arrays (``unnest``), the wake-up as a ``pg_notify`` that,
like the rest, happens only if the run was inserted. Connections run in autocommit, so the
statement is its own transaction: all of it or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.core.json_copy import dumps_record
from tether.core.lifecycle import RunStatus
from tether.store.pg_commit import text_array
from tether.store.rows import CHECKPOINT_COLUMNS, RUN_COLUMNS, checkpoint_params, run_params
from tether.store.types import Checkpoint, Event, RunRecord
from tether.store.wakeup import payload

_RUN_TYPES = {
    "input": "bytea",
    "result": "bytea",
    "error": "bytea",
    "escalation": "bytea",
    "metadata": "bytea",
    "step": "bigint",
    "parent_step": "bigint",
    "lease_token": "bigint",
    "event_seq": "bigint",
    "priority": "bigint",
    "lease_expires_at": "double precision",
    "created_at": "double precision",
    "updated_at": "double precision",
    "available_at": "double precision",
}
_CP_TYPES = {
    "step": "bigint",
    "delta": "bytea",
    "next_tasks": "bytea",
    "snapshot": "bytea",
    "barriers": "bytea",
    "created_at": "double precision",
    "meta": "bytea",
}


def _arg(column: str, types: dict[str, str]) -> str:
    return f"%s::{types.get(column, 'text')}"


def statement(p: str, channel: str) -> str:
    """The statement (psycopg placeholders) for a table prefix ``p`` and NOTIFY ``channel``;
    parameters: see ``params``. Returns one row: whether the run was inserted (0 or 1)."""
    run_cols = ", ".join(RUN_COLUMNS)
    run_vals = ", ".join(_arg(c, _RUN_TYPES) for c in RUN_COLUMNS)
    cp_cols = ", ".join(CHECKPOINT_COLUMNS)
    cp_vals = ", ".join(_arg(c, _CP_TYPES) for c in CHECKPOINT_COLUMNS[1:])
    cp_set = ", ".join(f"{c} = excluded.{c}" for c in CHECKPOINT_COLUMNS[2:])
    return (
        f"WITH r AS (INSERT INTO {p}runs ({run_cols}) VALUES ({run_vals}) "
        "ON CONFLICT DO NOTHING RETURNING run_id), "
        f"c AS (INSERT INTO {p}checkpoints ({cp_cols}) SELECT r.run_id, {cp_vals} FROM r "
        f"ON CONFLICT (run_id, step) DO UPDATE SET {cp_set}), "
        f"t AS (INSERT INTO {p}transitions (run_id, seq, src, dst, ts, actor, reason) "
        "SELECT r.run_id, x.ord, x.src, x.dst, %s::double precision, x.actor, x.reason FROM r, "
        "unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
        "WITH ORDINALITY AS x(src, dst, actor, reason, ord)), "
        f"e AS (INSERT INTO {p}events (run_id, seq, type, ts, step, node, data) "
        "SELECT r.run_id, %s::bigint + x.ord, x.type, x.ts, x.step, x.node, x.data FROM r, "
        "unnest(%s::text[], %s::double precision[], %s::bigint[], %s::text[], %s::bytea[]) "
        "WITH ORDINALITY AS x(type, ts, step, node, data, ord)), "
        f"n AS (SELECT pg_notify('{channel}', %s::text) FROM r WHERE %s::text IS NOT NULL) "
        "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM n)"
    )


def params(
    run: RunRecord,
    checkpoint: Checkpoint,
    transitions: Sequence[tuple[RunStatus | None, RunStatus, str, str]],
    events: Sequence[Event],
    now: float,
    claimable: bool,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The statement's parameters, and the run row as stored (``run_params`` order)."""
    p = run_params(run)
    seq0 = run.event_seq
    row = (*p[:15], now, now, seq0 + len(events), *p[18:])
    cp = checkpoint_params(run.run_id, checkpoint, now)[1:]
    trs = (
        text_array([s.value if s is not None else None for s, _d, _a, _r in transitions]),
        text_array([d.value for _s, d, _a, _r in transitions]),
        text_array([a for _s, _d, a, _r in transitions]),
        text_array([r for _s, _d, _a, r in transitions]),
    )
    evs = (
        seq0,
        text_array([e.type for e in events]),
        "{" + ",".join([repr(float(e.ts or now)) for e in events]) + "}",
        "{" + ",".join(["NULL" if e.step is None else str(int(e.step)) for e in events]) + "}",
        text_array([e.node for e in events]),
        "{" + ",".join(['"\\\\x' + dumps_record(e.data).hex() + '"' for e in events]) + "}",
    )
    wake = payload(run.queue, run.available_at) if claimable else None
    return (*row, *cp, now, *trs, *evs, wake, wake), row
