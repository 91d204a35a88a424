"""PostgreSQL ``commit`` in one round trip: a plpgsql function installed by the migration.

``tether_commit(...)`` updates the run row only where the fence (``lease_token = token``) and
the status the commit may start from both hold (the UPDATE locks the row: no separate
``SELECT ... FOR UPDATE``, one statement and one row lock fewer per step; schema version 4),
then writes the checkpoint, transitions and events and returns the updated run, all inside the
caller's single statement; when the UPDATE matched nothing it reads the row to say why (gone,
fence, status) and raises, which rolls the statement back. Hop-by-hop legality is checked in
Python before sending (it does not depend on the stored status); the database only checks the
first hop's source, so the check and the write cannot race. Failures come back as SQLSTATEs
the store maps to tether errors.

A commit that merges ``metadata`` (rare: re-plans, resumes) first locks the row and reads the
current object in the same transaction, so the merge happens in Python: PostgreSQL's JSON parser
cannot merge every value serde writes (``\u0000`` in strings, float spellings).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from tether.core.json_copy import dumps_record
from tether.core.lifecycle import RunStatus
from tether.store.memory import check_commit_transitions
from tether.store.rows import RUN_COLUMNS, checkpoint_params, enc, enc_record, row_to_run
from tether.store.sql_base import ACTIVE_VALUES, statuses_entering
from tether.store.types import Commit, RunRecord

NOT_FOUND, LEASE_LOST, WRONG_STATUS = "TT404", "TT409", "TT422"

_PARAMS = (
    ("run_id", "text"),
    ("token", "bigint"),
    ("allowed", "text[]"),
    ("now", "double precision"),
    ("cp_step", "bigint"),
    ("cp_delta", "bytea"),
    ("cp_next", "bytea"),
    ("cp_snapshot", "bytea"),
    ("cp_barriers", "bytea"),
    ("cp_meta", "bytea"),
    ("status", "text"),
    ("tr_src", "text[]"),
    ("tr_dst", "text[]"),
    ("tr_actor", "text[]"),
    ("tr_reason", "text[]"),
    ("ev_type", "text[]"),
    ("ev_ts", "double precision[]"),
    ("ev_step", "bigint[]"),
    ("ev_node", "text[]"),
    ("ev_data", "bytea[]"),
    ("set_result", "boolean"),
    ("result", "bytea"),
    ("set_error", "boolean"),
    ("error", "bytea"),
    ("set_escalation", "boolean"),
    ("escalation", "bytea"),
    ("metadata", "bytea"),
    ("clear_step", "bigint"),
    ("release", "boolean"),
    ("available_at", "double precision"),
)
PARAMS = _PARAMS
"""(name, SQL type) of the commit function's parameters, in order (``params`` builds them)."""
_BEFORE_V7 = len(_PARAMS) - 1
"""Parameters of the commit function up to schema v6 (v7 added ``available_at``)."""


def drop_v6(p: str) -> str:
    """Drop the v6 commit function: a new parameter makes a new function (an overload)."""
    return f"DROP FUNCTION IF EXISTS {p}commit({', '.join(t for _n, t in _PARAMS[:_BEFORE_V7])})"


def functions(p: str, channel: str) -> list[str]:
    """DDL of the commit function (``p``: the qualified table prefix; ``channel``: where a
    commit that leaves an ACTIVE run unowned sends its wake-up, see ``store.wakeup``)."""
    active = ", ".join(f"'{v}'" for v in ACTIVE_VALUES)
    args = ", ".join(f"p_{name} {typ}" for name, typ in _PARAMS)
    commit = f"""CREATE OR REPLACE FUNCTION {p}commit({args}) RETURNS SETOF {p}runs
LANGUAGE plpgsql AS $fn$
DECLARE
    r {p}runs;
    cur_status text;
    cur_token bigint;
    n_ev integer := COALESCE(array_length(p_ev_type, 1), 0);
    tr_base bigint;
    admin boolean := p_token IS NULL;
BEGIN
    UPDATE {p}runs SET
        status = COALESCE(p_status, status),
        step = GREATEST(step, COALESCE(p_cp_step, step)),
        result = CASE WHEN p_set_result THEN p_result ELSE result END,
        error = CASE WHEN p_set_error THEN p_error ELSE error END,
        escalation = CASE WHEN p_set_escalation THEN p_escalation ELSE escalation END,
        metadata = COALESCE(p_metadata, metadata),
        event_seq = event_seq + n_ev,
        lease_token = lease_token + CASE WHEN admin THEN 1 ELSE 0 END,
        owner = CASE WHEN admin OR p_release THEN NULL ELSE owner END,
        lease_expires_at = CASE WHEN admin OR p_release THEN 0 ELSE lease_expires_at END,
        available_at = COALESCE(p_available_at, available_at),
        updated_at = p_now
    WHERE run_id = p_run_id AND (admin OR lease_token = p_token)
        AND (p_allowed IS NULL OR status = ANY (p_allowed))
    RETURNING * INTO r;
    IF NOT FOUND THEN  -- nothing written: say why
        SELECT status, lease_token INTO cur_status, cur_token
        FROM {p}runs WHERE run_id = p_run_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = '{NOT_FOUND}', MESSAGE = p_run_id;
        END IF;
        IF NOT admin AND cur_token <> p_token THEN
            RAISE EXCEPTION USING ERRCODE = '{LEASE_LOST}', MESSAGE = cur_token::text;
        END IF;
        RAISE EXCEPTION USING ERRCODE = '{WRONG_STATUS}', MESSAGE = cur_status;
    END IF;
    IF p_cp_step IS NOT NULL THEN
        INSERT INTO {p}checkpoints
            (run_id, step, delta, next_tasks, snapshot, barriers, created_at, meta)
        VALUES (p_run_id, p_cp_step, p_cp_delta, p_cp_next, p_cp_snapshot, p_cp_barriers,
                p_now, p_cp_meta)
        ON CONFLICT (run_id, step) DO UPDATE SET delta = excluded.delta,
            next_tasks = excluded.next_tasks, snapshot = excluded.snapshot,
            barriers = excluded.barriers, created_at = excluded.created_at, meta = excluded.meta;
    END IF;
    IF p_tr_dst IS NOT NULL THEN
        SELECT COALESCE(MAX(seq), 0) INTO tr_base FROM {p}transitions WHERE run_id = p_run_id;
        INSERT INTO {p}transitions (run_id, seq, src, dst, ts, actor, reason)
        SELECT p_run_id, tr_base + t.i, t.src, t.dst, p_now, t.actor, t.reason
        FROM unnest(p_tr_src, p_tr_dst, p_tr_actor, p_tr_reason)
            WITH ORDINALITY AS t(src, dst, actor, reason, i);
    END IF;
    IF n_ev > 0 THEN
        INSERT INTO {p}events (run_id, seq, type, ts, step, node, data)
        SELECT p_run_id, r.event_seq - n_ev + e.i, e.t, e.ts, e.st, e.nd, e.dt
        FROM unnest(p_ev_type, p_ev_ts, p_ev_step, p_ev_node, p_ev_data)
            WITH ORDINALITY AS e(t, ts, st, nd, dt, i);
    END IF;
    IF p_clear_step IS NOT NULL THEN
        DELETE FROM {p}node_writes WHERE run_id = p_run_id AND step = p_clear_step;
    END IF;
    IF (admin OR p_release) AND r.status IN ({active}) THEN  -- claimable: wake the workers
        PERFORM pg_notify('{channel}', r.queue || chr(10) || r.available_at::text);
    END IF;
    RETURN NEXT r;
END
$fn$"""
    return [commit]


def call(p: str, columns: Sequence[str] = RUN_COLUMNS) -> str:
    """The one statement ``PostgresStore.commit`` sends (psycopg placeholders), fetching
    ``columns`` of the committed run (a step commit fetches only its small ones)."""
    args = ", ".join(f"%s::{typ}" for _name, typ in _PARAMS)
    return f"SELECT {', '.join(columns)} FROM {p}commit({args})"


def allowed_statuses(commit: Commit) -> str | None:
    """Statuses (an array literal) the run may be in for ``commit`` to be legal; None: any.

    Raises (like every backend) for a hop that is illegal whatever the stored status is.
    """
    if commit.transitions:
        src, dst = commit.transitions[0][0], commit.transitions[0][1]
        check_commit_transitions(RunRecord("", "", src), commit)
        return _entering(dst, src)
    if commit.status is not None:
        return _entering(commit.status, commit.status)
    return None


@cache
def _entering(dst: RunStatus, src: RunStatus) -> str:
    return text_array(list(statuses_entering(dst, src)))


def first_destination(commit: Commit) -> RunStatus:
    if commit.transitions:
        return commit.transitions[0][1]
    assert commit.status is not None
    return commit.status


def text_array(items: Sequence[str | None]) -> str:
    """A PostgreSQL array literal: psycopg adapts lists in Python, ~10x slower than this."""
    out = []
    for item in items:
        if item is None:
            out.append("NULL")
        else:
            out.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


def last_event_seq(commit: Commit) -> int | None:
    """The run's ``event_seq`` once ``commit`` applied, when its events carry the writer's own
    consecutive numbering (a run loop's do: it holds the lease, so it numbers the run's events);
    None when they do not (then nothing tells whether a lost commit applied)."""
    evs = commit.events
    if not evs:
        return None
    first = evs[0].seq
    if first <= 0 or any(e.seq != first + i for i, e in enumerate(evs)):
        return None
    return evs[-1].seq


def applied(row: Any, token: int, last_seq: int, n_events: int) -> bool | None:
    """Whether a fenced commit whose reply was lost applied, read from the run ``row`` now:
    True (the run's event counter holds the commit's last event), False (it still stands just
    before the commit's first: nothing applied, sending it again is safe), None (neither, or
    it cannot be told). Sound because only the lease holder commits under
    ``token``: an admin commit bumps the token, and then the fence refuses the resend anyway."""
    if row is None:
        return False  # deleted: resending says so (RunNotFoundError)
    run = row_to_run(row)
    if run.lease_token != token:
        return False  # another writer now: resending is refused by the fence (LeaseLostError)
    if run.event_seq == last_seq:
        return True
    if run.event_seq == last_seq - n_events:
        return False
    return None


def params(
    run_id: str, token: int | None, now: float, commit: Commit, metadata: bytes | None
) -> tuple[Any, ...]:
    """Arguments of ``call``; ``metadata`` is the whole merged object (or None: unchanged)."""
    cp, trs, evs = commit.checkpoint, commit.transitions, commit.events
    cp_vals: tuple[Any, ...] = (None,) * 6
    if cp is not None:  # the row's columns (one encoding for every backend) less run_id, ts
        _run, step, delta, next_tasks, snapshot, barriers, _at, meta = checkpoint_params(
            run_id, cp, now
        )
        cp_vals = (step, delta, next_tasks, snapshot, barriers, meta)
    tr_vals: tuple[Any, ...] = (None,) * 4
    if trs:
        tr_vals = (
            text_array([t[0].value for t in trs]),
            text_array([t[1].value for t in trs]),
            text_array([t[2] for t in trs]),
            text_array([t[3] for t in trs]),
        )
    ev_vals: tuple[Any, ...] = (None,) * 5
    if evs:
        ev_vals = (
            text_array([e.type for e in evs]),
            "{" + ",".join([repr(float(e.ts or now)) for e in evs]) + "}",
            "{" + ",".join(["NULL" if e.step is None else str(int(e.step)) for e in evs]) + "}",
            text_array([e.node for e in evs]),
            "{" + ",".join(['"\\\\x' + dumps_record(e.data).hex() + '"' for e in evs]) + "}",
        )
    return (
        run_id,
        token,
        allowed_statuses(commit),
        now,
        *cp_vals,
        commit.status.value if commit.status is not None else None,
        *tr_vals,
        *ev_vals,
        commit.set_result,
        enc(commit.result) if commit.set_result else None,
        commit.set_error,
        enc_record(commit.error) if commit.set_error else None,
        commit.set_escalation,
        enc_record(commit.escalation) if commit.set_escalation else None,
        metadata,
        commit.clear_node_writes_for_step,
        commit.release_lease,
        commit.available_at,
    )
