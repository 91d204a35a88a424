"""How one commit is written into SQLite: the statements of a step's commit on a cursor inside a
transaction the store holds (``SqliteStore``'s group commit, a resume's ``lease_and_commit``).

The store decides *when* to write (one ``BEGIN IMMEDIATE`` for the commits of one event-loop tick)
and to whom the outcome goes; ``CommitWriter`` holds *what* a commit writes: the fence and
lifecycle checks, then the checkpoint, transitions, node writes, events and the run's one
UPDATE of the columns that changed.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from tether.core.clock import Clock
from tether.core.errors import (
    IllegalTransitionError,
    LeaseLostError,
    RunNotFoundError,
)
from tether.core.json_copy import dumps_record
from tether.core.lifecycle import RunStatus
from tether.core.serde import dumps, loads
from tether.store import run_head
from tether.store.blob_codec import pack
from tether.store.memory import check_commit_transitions, check_node_writes, moved
from tether.store.rows import (
    CHECKPOINT_COLUMNS,
    EMPTY_OBJECT,
    EVENT_COLUMNS,
    checkpoint_params,
    enc,
    enc_record,
    event_params,
    node_write_params,
    row_to_run,
)
from tether.store.sql_base import Statements
from tether.store.sql_store import padded
from tether.store.types import Checkpoint, Commit, Event, RunRecord

Hop = tuple[RunStatus | None, RunStatus, str, str]
Queued = tuple[str, int | None, Commit, "asyncio.Future[RunRecord]"]
"""A commit waiting for the next group commit: run id, token, commit, its caller's future."""

HEADS_AT_ONCE = 256
"""Runs whose heads one statement of a group commit reads (``CommitWriter.heads``)."""


class CommitWriter:
    """The statements of a commit, for one store's dialect and clock."""

    def __init__(self, sql: Statements, clock: Clock) -> None:
        self.sql = sql
        self.clock = clock
        self.head_sql = run_head.head_sql(sql.dialect.prefix)
        self.upsert_bare_checkpoint = _null_at(
            sql.upsert_checkpoint, _CP_SNAPSHOT, len(CHECKPOINT_COLUMNS)
        )
        self.insert_nodeless_event = _null_at(sql.insert_event, _EV_NODE, len(EVENT_COLUMNS))

    def heads(self, cur: sqlite3.Cursor, batch: Sequence[Queued]) -> dict[str, Any]:
        """The heads (``run_head.HEAD_COLUMNS``) of a batch's runs whose commits carry a usable
        ``base``, read inside the batch's transaction before it writes anything: one statement
        for up to ``HEADS_AT_ONCE`` runs instead of one per commit."""
        ids = [r for r, token, commit, _f in batch if run_head.usable(commit, token) is not None]
        heads: dict[str, Any] = {}
        for i in range(0, len(ids), HEADS_AT_ONCE):
            chunk = padded(ids[i : i + HEADS_AT_ONCE])
            n = len(chunk)
            sql = self.sql.memoized(("heads", n), functools.partial(_heads_sql, self.sql, n))
            for row in cur.execute(sql, chunk).fetchall():
                heads[row[0]] = row[1:]
        return heads

    def try_apply(
        self,
        cur: sqlite3.Cursor,
        run_id: str,
        token: int | None,
        commit: Commit,
        heads: dict[str, Any] | None = None,
    ) -> RunRecord | BaseException:
        """Expected refusals (fencing, lifecycle, unknown run) happen before any write, so they
        are returned and the batch goes on; anything else aborts the batch."""
        try:
            return self.apply(cur, run_id, token, commit, heads)
        except (LeaseLostError, IllegalTransitionError, RunNotFoundError, ValueError) as exc:
            return exc

    def _read_for_commit(
        self,
        cur: sqlite3.Cursor,
        run_id: str,
        token: int | None,
        commit: Commit,
        heads: dict[str, Any] | None,
    ) -> RunRecord:
        """The run as the commit starts from. Given a usable ``Commit.base``, only the small
        columns are read (SQLite would otherwise copy and decode the whole input every step),
        or taken from ``heads`` (``heads``: read for the batch; each is used once, so a second
        commit of the same run in the batch reads what the first one wrote); the whole row
        only when ``base`` no longer matches the stored run."""
        base = run_head.usable(commit, token)
        if base is not None:
            head = heads.pop(run_id, None) if heads else None
            if head is None:
                # fetchall: the statement runs to its end, so the shared cursor holds none open
                rows = cur.execute(self.head_sql, (run_id,)).fetchall()
                if not rows:
                    raise RunNotFoundError(run_id)
                head = rows[0]
            if head[3] != token or head[6] == base.event_seq:  # a lost fence, or base matches
                return run_head.merge(base, head)
        rows = cur.execute(self.sql.get_run, (run_id,)).fetchall()
        if not rows:
            raise RunNotFoundError(run_id)
        return row_to_run(rows[0])

    def apply(
        self,
        cur: sqlite3.Cursor,
        run_id: str,
        token: int | None,
        commit: Commit,
        heads: dict[str, Any] | None = None,
        lease: tuple[str, float] | None = None,
    ) -> RunRecord:
        """``lease``: (owner, expiry) of a lease taken in this write (``lease_and_commit``): the
        run must be unowned under ``token``, which the write bumps."""
        sql = self.sql
        run = self._read_for_commit(cur, run_id, token, commit, heads)
        if token is not None and run.lease_token != token:
            raise LeaseLostError(run_id, token)
        if lease is not None and (run.owner is not None or moved(run, commit)):
            raise LeaseLostError(run_id, token)
        check_commit_transitions(run, commit)
        check_node_writes(run_id, commit)
        now = self.clock.now()
        cols: list[str] = ["updated_at"]
        vals: list[Any] = [now]
        cp = commit.checkpoint
        if cp is not None:
            if cp.snapshot is None:  # most steps: no snapshot, the row built at once
                cur.execute(self.upsert_bare_checkpoint, _bare_checkpoint_row(run_id, cp, now))
            else:
                row = _checkpoint_row(checkpoint_params(run_id, cp, now))
                cur.execute(sql.upsert_checkpoint, row)
            if cp.step > run.step:
                run.step = cp.step
                cols.append("step")
                vals.append(cp.step)
        if commit.transitions:
            ((base,),) = cur.execute(sql.max_transition_seq, (run_id,)).fetchall()
            cur.executemany(
                sql.insert_transition, _transition_rows(run_id, base, commit.transitions, now)
            )
        if commit.status is not None and commit.status is not run.status:
            run.status = commit.status
            cols.append("status")
            vals.append(commit.status.value)
        if commit.set_result:
            blob = enc(commit.result)
            run.result = loads(blob)
            cols.append("result")
            vals.append(blob)
        if commit.set_error:
            blob = enc_record(commit.error)
            run.error = loads(blob)
            cols.append("error")
            vals.append(blob)
        if commit.set_escalation:
            blob = enc_record(commit.escalation)
            run.escalation = loads(blob)
            cols.append("escalation")
            vals.append(blob)
        if commit.metadata is not None:
            meta = dumps({**run.metadata, **commit.metadata})
            run.metadata = loads(meta)
            cols.append("metadata")
            vals.append(meta)
        if commit.clear_node_writes_for_step is not None:
            cur.execute(sql.clear_node_writes, (run_id, commit.clear_node_writes_for_step))
        if commit.node_writes:  # the fence holds: checked above, in this transaction
            for w in commit.node_writes:
                cur.execute(sql.upsert_node_write, _blobs(node_write_params(w, now)))
        events = commit.events
        if events:
            seq0 = run.event_seq
            if len(events) == 1:  # a step's commit: its step_finished event
                ev = events[0]
                if ev.node is None:  # no node (step_finished): NULL written in the statement
                    data = bytearray(dumps_record(ev.data))  # as event_params writes it
                    row = (run_id, seq0 + 1, ev.type, float(ev.ts or now), ev.step, data)
                    cur.execute(self.insert_nodeless_event, row)
                else:
                    row = _event_row(event_params(run_id, seq0 + 1, ev, now))
                    cur.execute(sql.insert_event, row)
            else:
                cur.executemany(sql.insert_event, _event_rows(run_id, seq0, events, now))
            run.event_seq = seq0 + len(events)
            cols.append("event_seq")
            vals.append(run.event_seq)
        if token is None or lease is not None:
            run.lease_token += 1
            cols.append("lease_token")
            vals.append(run.lease_token)
        if lease is not None and not commit.release_lease:
            run.owner, run.lease_expires_at = lease
            cols += ("owner", "lease_expires_at")
            vals += lease
        elif token is None or commit.release_lease:
            run.owner, run.lease_expires_at = None, 0.0
            cols += ("owner", "lease_expires_at")
            vals += (None, 0.0)
        if commit.available_at is not None:
            run.available_at = commit.available_at
            cols.append("available_at")
            vals.append(commit.available_at)
        run.updated_at = now
        vals.append(run_id)
        cur.execute(sql.update_run(tuple(cols)), vals)
        return run


# A step's commit binds its blobs as ``bytearray``: ``sqlite3`` binds an exact ``bytearray``
# (like ``int``, ``float`` and ``str``) as it is, while for every ``bytes`` value it first asks
# its adapter registry and the value's ``__conform__`` (about a microsecond a value, several per
# step; the copy costs a tenth of that). Both are stored as the same BLOB and read back as bytes.
#
# A ``None`` parameter costs more still: ``sqlite3`` asks the adapter registry, the protocol's
# ``__adapt__`` and ``None.__conform__`` before binding NULL (about 3,000 CPU instructions). The
# two a step's commit usually has (no snapshot, a step_finished event with no node) are written
# into the statements instead (``_null_at``).
_CP_SNAPSHOT = CHECKPOINT_COLUMNS.index("snapshot")
_EV_NODE = EVENT_COLUMNS.index("node")


def _null_at(text: str, index: int, n: int) -> str:
    """``text`` (one ``VALUES`` list of ``n`` placeholders) with a NULL literal instead of its
    ``index``-th placeholder: the same statement for a row without that value."""
    marks = "(" + ", ".join("?" * n) + ")"
    if text.count(marks) != 1:
        raise AssertionError(f"expected one VALUES {marks} in {text!r}")
    bare = ", ".join("NULL" if i == index else "?" for i in range(n))
    return text.replace(marks, f"({bare})")


def _bare_checkpoint_row(run_id: str, cp: Checkpoint, now: float) -> tuple[Any, ...]:
    """``_checkpoint_row(checkpoint_params(run_id, cp, now))`` for a checkpoint without a
    snapshot (``upsert_bare_checkpoint``'s 7 values), built in one go: once a step."""
    delta = cp.delta_blob if cp.delta_blob is not None else dumps(cp.delta)
    return (
        run_id, cp.step, bytearray(pack(delta)), bytearray(dumps(cp.next_tasks)),
        bytearray(dumps(cp.barriers) if cp.barriers else EMPTY_OBJECT), now,
        bytearray(dumps(cp.meta) if cp.meta else EMPTY_OBJECT),
    )  # fmt: skip


def _checkpoint_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``checkpoint_params``'s row of a checkpoint with a snapshot, its blobs as ``bytearray``
    (one without goes through ``_bare_checkpoint_row``)."""
    run_id, step, delta, next_tasks, snapshot, barriers, created_at, meta = row
    return (
        run_id, step, bytearray(delta), bytearray(next_tasks), bytearray(snapshot),
        bytearray(barriers), created_at, bytearray(meta),
    )  # fmt: skip


def _event_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``event_params``'s row with its data as ``bytearray``."""
    run_id, seq, type_, ts, step, node, data = row
    return run_id, seq, type_, ts, step, node, bytearray(data)


def _event_rows(
    run_id: str, seq0: int, events: Sequence[Event], now: float
) -> list[tuple[Any, ...]]:
    """The rows of ``events``, numbered from ``seq0 + 1``."""
    return [_event_row(event_params(run_id, seq0 + i, e, now)) for i, e in enumerate(events, 1)]


def _transition_rows(run_id: str, base: int, hops: Sequence[Hop], now: float) -> list[Any]:
    """The rows of a commit's lifecycle ``hops``, numbered from ``base + 1``."""
    return [
        (run_id, base + i, src.value if src is not None else None, dst.value, now, actor, why)
        for i, (src, dst, actor, why) in enumerate(hops, 1)
    ]


def _blobs(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with each ``bytes`` value as ``bytearray``."""
    return tuple(bytearray(v) if type(v) is bytes else v for v in row)


def _heads_sql(sql: Statements, n: int) -> str:
    cols = ", ".join(run_head.HEAD_COLUMNS)
    marks = ", ".join("?" * n)
    return f"SELECT run_id, {cols} FROM {sql.dialect.prefix}runs WHERE run_id IN ({marks})"
