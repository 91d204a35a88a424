"""The SQL every backend shares, written once; ``Dialect`` subclasses supply the differences.

Statements are written with ``?`` placeholders; a dialect rewrites them to its driver's style.
Fenced writes carry the fence in the same statement (``... FROM runs WHERE run_id = ? AND
(token IS NULL OR lease_token = token)``), locking the run row where the database needs it, so a
stale owner's write and a new owner's lease can never interleave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, cached_property
from typing import ClassVar

from tether.core.lifecycle import ACTIVE, FINISHED, TRANSITIONS, RunStatus
from tether.store import claim_order
from tether.store.rows import (
    CHECKPOINT_COLUMNS,
    EFFECT_COLUMNS,
    EVENT_COLUMNS,
    NODE_WRITE_COLUMNS,
    RUN_COLUMNS,
    TRANSITION_COLUMNS,
)

CHILD_TABLES = (
    "checkpoints",
    "node_writes",
    "effects",
    "events",
    "transitions",
    "pii_vault",  # a deleted or purged run takes its personal data with it (schema v14)
    "pii_keys",
)


class Dialect:
    """Type names and clauses that differ between databases."""

    name: ClassVar[str]
    blob: ClassVar[str]
    real: ClassVar[str]
    bigint: ClassVar[str]
    share_lock: ClassVar[str] = ""
    """Appended to the fencing sub-select: keeps the run row stable until the write commits."""
    skip_locked: ClassVar[str] = ""
    """Appended to the claim sub-select: concurrent claimers pass over each other's rows."""
    row_lock: ClassVar[str] = ""
    """Appended to the purge's family read (``store.purge``): locks the family's run rows."""
    compact_rows: ClassVar[str] = ""
    """Table option for the small append-only tables (events, transitions)."""
    runs_options: ClassVar[str] = ""
    effects_order: ClassVar[str]
    """Column giving the insertion order of effects."""
    effects_order_column: ClassVar[str] = ""
    inputs_apart: ClassVar[bool] = False
    """Runs' inputs live in ``run_inputs`` (schema v6), not in the run row."""

    def __init__(self, prefix: str = "tether_") -> None:
        self.prefix = prefix
        """Qualified table-name prefix (``tether_`` or ``"schema".tether_``)."""
        self.channel: str | None = None
        """Where this database sends wake-ups to other processes (PostgreSQL NOTIFY, see
        ``store.wakeup``); None: other processes poll."""

    def sql(self, text: str) -> str:
        """Rewrite ``?`` placeholders into the driver's style."""
        return text

    def table_exists(self, name: str) -> tuple[str, tuple[str, ...]]:
        """A query answering one row whose first column is non-zero when tether's table
        ``name`` (without prefix) exists, and its parameters."""
        raise NotImplementedError

    def extra_migrations(self) -> dict[int, list[str]]:
        """Dialect-only statements appended to a migration version (functions, ...)."""
        return {}


def _cols(names: Sequence[str], alias: str = "") -> str:
    return ", ".join(alias + n for n in names)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _in(n: int) -> str:
    return f"({_marks(n)})"


def run_select(d: Dialect) -> str:
    """The select list of ``RUN_COLUMNS`` from ``{prefix}runs``: where inputs live apart, the
    input comes from ``run_inputs`` (read only by the queries that return whole runs)."""
    if not d.inputs_apart:
        return _cols(RUN_COLUMNS)
    p = d.prefix
    fetch = f"(SELECT i.input FROM {p}run_inputs i WHERE i.run_id = {p}runs.run_id) AS input"
    return ", ".join(fetch if c == "input" else f"{p}runs.{c}" for c in RUN_COLUMNS)


ACTIVE_VALUES = tuple(sorted(s.value for s in ACTIVE))
FINISHED_VALUES = tuple(sorted(s.value for s in FINISHED))
_PRED: dict[RunStatus, frozenset[RunStatus]] = {
    d: frozenset(s for s in RunStatus if d in TRANSITIONS[s]) for d in RunStatus
}


@cache
def statuses_entering(dst: RunStatus, also: RunStatus) -> tuple[str, ...]:
    """Current statuses from which a commit whose first hop is ``also -> dst`` is legal."""
    return tuple(sorted({s.value for s in _PRED[dst]} | {also.value}))


_NODE_WRITE_CONFLICT = "ON CONFLICT (run_id, step, task_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in NODE_WRITE_COLUMNS[3:]
)
"""A node write's upsert: the last write of a task at a step wins."""


class Statements:
    """Every shared statement for a dialect and table prefix, each rendered on its first use
    and kept: a fresh process (a CLI call, a resume) renders only the few it runs, not all."""

    def __init__(self, d: Dialect) -> None:
        self.dialect = d
        self._p = d.prefix
        self._q = d.sql
        self._memo: dict[tuple[object, ...], str] = {}

    @cached_property
    def fence_from(self) -> str:
        fence = "(CAST(? AS BIGINT) IS NULL OR lease_token = ?)"
        return f"FROM {self._p}runs WHERE run_id = ? AND {fence}{self.dialect.share_lock}"

    @cached_property
    def run_select(self) -> str:
        """``RUN_COLUMNS`` of a ``FROM {prefix}runs`` query (the input read from where it is)."""
        return run_select(self.dialect)

    # runs
    @cached_property
    def get_run(self) -> str:
        return self._q(f"SELECT {self.run_select} FROM {self._p}runs WHERE run_id = ?")

    @cached_property
    def get_run_by_key(self) -> str:
        return self._q(f"SELECT {self.run_select} FROM {self._p}runs WHERE idempotency_key = ?")

    @cached_property
    def insert_input(self) -> str:
        return self._q(f"INSERT INTO {self._p}run_inputs (run_id, input) VALUES (?, ?)")

    @cached_property
    def run_token(self) -> str:
        return self._q(f"SELECT lease_token FROM {self._p}runs WHERE run_id = ?")

    @cached_property
    def run_created(self) -> str:
        return self._q(f"SELECT created_at, tenant FROM {self._p}runs WHERE run_id = ?")

    @cached_property
    def insert_run(self) -> str:
        return self._q(
            f"INSERT INTO {self._p}runs ({_cols(RUN_COLUMNS)}) VALUES ({_marks(len(RUN_COLUMNS))}) "
            "ON CONFLICT DO NOTHING RETURNING run_id"
        )

    @cached_property
    def max_transition_seq(self) -> str:
        return self._q(f"SELECT COALESCE(MAX(seq), 0) FROM {self._p}transitions WHERE run_id = ?")

    @cached_property
    def insert_transition(self) -> str:
        return self._q(
            f"INSERT INTO {self._p}transitions ({_cols(TRANSITION_COLUMNS)}) VALUES ({_marks(7)})"
        )

    @cached_property
    def insert_event(self) -> str:
        return self._q(f"INSERT INTO {self._p}events ({_cols(EVENT_COLUMNS)}) VALUES ({_marks(7)})")

    @cached_property
    def clear_node_writes(self) -> str:
        return self._q(f"DELETE FROM {self._p}node_writes WHERE run_id = ? AND step = ?")

    # the run row goes first: writers lock it before its children, so deleting in the same
    # order cannot deadlock with them
    @cached_property
    def delete_run(self) -> str:
        return self._q(f"DELETE FROM {self._p}runs WHERE run_id = ?")

    @cached_property
    def delete_children(self) -> list[str]:
        d = self.dialect
        children = (*CHILD_TABLES, "run_inputs") if d.inputs_apart else CHILD_TABLES
        return [self._q(f"DELETE FROM {self._p}{t} WHERE run_id = ?") for t in children]

    # leases
    @cached_property
    def acquire_lease(self) -> str:
        return self._q(
            f"UPDATE {self._p}runs SET lease_token = CASE WHEN owner = ? AND lease_expires_at > ? "
            "THEN lease_token ELSE lease_token + 1 END, owner = ?, lease_expires_at = ? "
            "WHERE run_id = ? AND (owner IS NULL OR lease_expires_at <= ? OR owner = ?) "
            "RETURNING lease_token, lease_expires_at"
        )

    @cached_property
    def renew_lease(self) -> str:
        return self._q(
            f"UPDATE {self._p}runs SET lease_expires_at = ? "
            "WHERE run_id = ? AND lease_token = ? AND owner = ? RETURNING lease_expires_at"
        )

    @cached_property
    def release_lease(self) -> str:
        """Returns the queue and available_at of a released ACTIVE run (to announce it); with
        a NOTIFY channel the announcement to other processes is sent in the same statement."""
        d = self.dialect
        release = (
            f"UPDATE {self._p}runs SET owner = NULL, lease_expires_at = 0 "
            "WHERE run_id = ? AND lease_token = ? RETURNING queue, available_at, status"
        )
        if d.channel is None:
            return self._q(release)  # SQLite: RETURNING only at the top level
        return self._q(
            f"WITH u AS ({release}) SELECT a.queue, a.available_at, a.status FROM "
            f"(SELECT * FROM u WHERE {claim_order.ACTIVE_LITERALS}) AS a CROSS JOIN LATERAL "
            f"pg_notify('{d.channel}', a.queue || chr(10) || a.available_at::text) AS n"
        )

    @cached_property
    def notify(self) -> str:
        return self._q("SELECT pg_notify(?, ?)")

    @cached_property
    def lease_owners(self) -> str:
        return self._q(
            f"SELECT DISTINCT owner FROM {self._p}runs WHERE status IN {_in(len(ACTIVE_VALUES))} "
            "AND lease_expires_at > ? AND owner IS NOT NULL"
        )

    # checkpoints
    @cached_property
    def upsert_checkpoint(self) -> str:
        cp_set = ", ".join(f"{c} = excluded.{c}" for c in CHECKPOINT_COLUMNS[2:])
        return self._q(
            f"INSERT INTO {self._p}checkpoints ({_cols(CHECKPOINT_COLUMNS)}) "
            f"VALUES ({_marks(len(CHECKPOINT_COLUMNS))}) "
            f"ON CONFLICT (run_id, step) DO UPDATE SET {cp_set}"
        )

    # one statement tells "no run" from "no step": the run row is always there if it exists
    @cached_property
    def get_checkpoint(self) -> str:
        p = self._p
        return self._q(
            f"SELECT {_cols(CHECKPOINT_COLUMNS, 'c.')} FROM {p}runs r "
            f"LEFT JOIN {p}checkpoints c ON c.run_id = r.run_id AND c.step = ? WHERE r.run_id = ?"
        )

    @cached_property
    def latest_checkpoint(self) -> str:
        p = self._p
        return self._q(
            f"SELECT {_cols(CHECKPOINT_COLUMNS, 'c.')} FROM {p}runs r "
            f"LEFT JOIN {p}checkpoints c ON c.run_id = r.run_id AND c.step = "
            f"(SELECT MAX(step) FROM {p}checkpoints WHERE run_id = ?) WHERE r.run_id = ?"
        )

    @cached_property
    def list_checkpoints(self) -> str:
        return self._q(
            f"SELECT {_cols(CHECKPOINT_COLUMNS)} FROM {self._p}checkpoints "
            "WHERE run_id = ? AND step >= ? AND step <= ? ORDER BY step LIMIT ?"
        )

    @cached_property
    def load_chain(self) -> str:
        p = self._p
        return self._q(
            f"SELECT {_cols(CHECKPOINT_COLUMNS)} FROM {p}checkpoints WHERE run_id = ? AND "
            f"step <= ? AND step >= COALESCE((SELECT step FROM {p}checkpoints WHERE run_id = ? "
            "AND step <= ? AND snapshot IS NOT NULL ORDER BY step DESC LIMIT 1), -1) ORDER BY step"
        )

    @cached_property
    def prune_checkpoints(self) -> str:
        return self._q(f"DELETE FROM {self._p}checkpoints WHERE run_id = ? AND step < ?")

    # node writes (fenced upsert)
    @cached_property
    def put_node_write(self) -> str:
        d = self.dialect
        nw_types = ("TEXT", d.bigint, "TEXT", "TEXT", "TEXT", *(d.blob,) * 4, d.real, d.blob)
        nw_vals = ", ".join(f"CAST(? AS {t})" for t in nw_types)
        return self._q(
            f"INSERT INTO {self._p}node_writes ({_cols(NODE_WRITE_COLUMNS)}) SELECT {nw_vals} "
            f"{self.fence_from} {_NODE_WRITE_CONFLICT}"
        )

    @cached_property
    def upsert_node_write(self) -> str:
        """``put_node_write`` without its fence, for a commit that checked the fence under the
        same write lock (the values bound have the types the fenced statement casts to)."""
        return self._q(
            f"INSERT INTO {self._p}node_writes ({_cols(NODE_WRITE_COLUMNS)}) "
            f"VALUES ({_marks(len(NODE_WRITE_COLUMNS))}) {_NODE_WRITE_CONFLICT}"
        )

    @cached_property
    def get_node_writes(self) -> str:
        return self._q(
            f"SELECT {_cols(NODE_WRITE_COLUMNS)} FROM {self._p}node_writes "
            "WHERE run_id = ? AND step = ? ORDER BY task_id"
        )

    # effects: the fenced upsert returns a row when it inserted (attempts = 1) or bumped a
    # pending intent (attempts > 1); nothing when the effect is finished or the fence failed
    @cached_property
    def record_intent(self) -> str:
        d = self.dialect
        return self._q(
            f"INSERT INTO {self._p}effects AS e ({_cols(EFFECT_COLUMNS)}) SELECT CAST(? AS TEXT), "
            f"CAST(? AS TEXT), CAST(? AS TEXT), 'pending', CAST(? AS {d.blob}), NULL, NULL, 1, "
            f"CAST(? AS {d.real}), CAST(? AS {d.real}) {self.fence_from} ON CONFLICT (run_id, key) "
            "DO UPDATE SET attempts = e.attempts + 1, updated_at = excluded.updated_at "
            f"WHERE e.status = 'pending' RETURNING {_cols(EFFECT_COLUMNS)}"
        )

    @cached_property
    def record_result(self) -> str:
        return self._q(
            f"UPDATE {self._p}effects SET status = ?, result = ?, error = ?, updated_at = ? "
            f"WHERE run_id = ? AND key = ? AND EXISTS (SELECT 1 {self.fence_from}) "
            f"RETURNING {_cols(EFFECT_COLUMNS)}"
        )

    @cached_property
    def get_effect(self) -> str:
        return self._q(
            f"SELECT {_cols(EFFECT_COLUMNS)} FROM {self._p}effects WHERE run_id = ? AND key = ?"
        )

    @cached_property
    def list_effects(self) -> str:
        return self._q(
            f"SELECT {_cols(EFFECT_COLUMNS)} FROM {self._p}effects WHERE run_id = ? "
            f"ORDER BY {self.dialect.effects_order}"
        )

    # events and transitions
    @cached_property
    def list_events(self) -> str:
        return self._q(
            f"SELECT {_cols(EVENT_COLUMNS)} FROM {self._p}events "
            "WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        )

    @cached_property
    def list_transitions(self) -> str:
        return self._q(
            f"SELECT {_cols(TRANSITION_COLUMNS)} FROM {self._p}transitions "
            "WHERE run_id = ? ORDER BY seq"
        )

    # control plane: token buckets (the read-modify-write runs in one transaction or, on
    # PostgreSQL, in the take_tokens function) and flags. The prefix match compares a
    # substring: LIKE would need escaping for % and _, and a range needs a collation-proof
    # upper bound (``prefix || U+FFFF`` misses keys with characters above U+FFFF)
    @cached_property
    def get_bucket(self) -> str:
        return self._q(f"SELECT tokens, updated_at FROM {self._p}buckets WHERE bucket = ?")

    @cached_property
    def put_bucket(self) -> str:
        return self._q(
            f"INSERT INTO {self._p}buckets (bucket, tokens, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (bucket) DO UPDATE SET tokens = excluded.tokens, "
            "updated_at = excluded.updated_at"
        )

    @cached_property
    def set_flag(self) -> str:
        return self._q(
            f"INSERT INTO {self._p}flags (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at"
        )

    @cached_property
    def delete_flag(self) -> str:
        return self._q(f"DELETE FROM {self._p}flags WHERE key = ?")

    @cached_property
    def all_flags(self) -> str:
        return self._q(f"SELECT key, value FROM {self._p}flags")

    @cached_property
    def flags_with_prefix(self) -> str:
        return self._q(
            f"SELECT key, value FROM {self._p}flags WHERE substr(key, 1, CAST(? AS INTEGER)) = ?"
        )

    def memoized(self, key: tuple[object, ...], build: Callable[[], str]) -> str:
        """The statement ``build()`` returns, in this dialect, built once per ``key``."""
        return self._memoized(key, build)

    def _memoized(self, key: tuple[object, ...], build: Callable[[], str]) -> str:
        text = self._memo.get(key)
        if text is None:
            text = self._memo[key] = self.dialect.sql(build())
        return text

    def list_runs(
        self,
        n_status: int | None,
        workflow: bool,
        parent: bool,
        cursor: str | None = None,
        thread: bool = False,
        tenant: bool = False,
    ) -> str:
        """Parameters of one branch: a status (when ``n_status``), the workflow, parent run id,
        thread id and tenant (those filtered on), then the cursor's ``created_at, run_id`` when
        ``cursor`` is ``"before"`` or ``"after"``. One status or none: a branch, then ``limit``
        and (without a cursor) ``offset``. Several: a branch and its own limit (``limit +
        offset``) per status, then ``limit`` and ``offset`` of the merge. ``"after"`` returns
        oldest first."""
        return self._memoized(
            ("list", n_status, workflow, parent, cursor, thread, tenant),
            lambda: self._list_runs(n_status, workflow, parent, cursor, thread, tenant),
        )

    def _list_runs(
        self,
        n_status: int | None,
        workflow: bool,
        parent: bool,
        cursor: str | None,
        thread: bool,
        tenant: bool = False,
    ) -> str:
        where = []
        if n_status is not None:
            where.append("status = ?")
        if workflow:
            where.append("workflow = ?")
        if parent:
            where.append("parent_run_id = ?")
        if thread:  # served by the (thread_id, created_at, run_id) index
            where.append("thread_id = ?")
        if tenant:  # served by the (tenant, created_at, run_id) index (schema v15)
            where.append("tenant = ?")
        if cursor is not None:  # a row-value range the (.., created_at, run_id) indexes serve
            where.append(f"(created_at, run_id) {'<' if cursor == 'before' else '>'} (?, ?)")
        order = "ASC" if cursor == "after" else "DESC"
        by = f"ORDER BY created_at {order}, run_id {order}"
        page = "" if cursor is not None else " OFFSET ?"
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        branch = f"SELECT {self.run_select} FROM {self.dialect.prefix}runs{cond}"
        if n_status is None or n_status == 1:
            return f"{branch} {by} LIMIT ?{page}"
        # several statuses: each one's page read in order from its index, then merged (an IN
        # list would read every match of every status and sort them all)
        merged = " UNION ALL ".join(
            f"SELECT * FROM ({branch} {by} LIMIT ?) AS b{i}" for i in range(n_status)
        )
        return f"SELECT * FROM ({merged}) AS u {by} LIMIT ?{page}"

    def claim_runs(
        self, n_workflows: int | None, n_exclude: int, n_dead: int = 0, n_queues: int | None = None
    ) -> str:
        """``claim_order.claim`` (its parameters; in claim order from indexes, see there). Rows:
        run id, token, expiry, priority, created_at, the previous owner, then (unless inputs
        live apart) the claimed run's ``RUN_COLUMNS``."""
        return self._memoized(
            ("claim", n_workflows, n_exclude, n_dead, n_queues),
            lambda: self._claim_runs(n_workflows, n_exclude, n_dead, n_queues),
        )

    def _claim_runs(
        self, n_workflows: int | None, n_exclude: int, n_dead: int, n_queues: int | None
    ) -> str:
        d = self.dialect
        claim = claim_order.claim(
            d.prefix,
            d.skip_locked,
            n_workflows,
            n_exclude,
            n_dead,
            n_queues,
            indexed_by=d.name == "sqlite",
        )
        # the claimed runs themselves, where the row holds all of a run (no read after)
        return claim + ("" if d.inputs_apart else f", {self.run_select}")

    def initial_checkpoints(self, n: int) -> str:
        """Step 0 of ``n`` runs (their ids as parameters)."""
        return self._memoized(
            ("initial_checkpoints", n),
            lambda: (
                f"SELECT {_cols(CHECKPOINT_COLUMNS)} FROM {self.dialect.prefix}checkpoints "
                f"WHERE step = 0 AND run_id IN {_in(n)}"
            ),
        )

    def renew_leases(self, n: int) -> str:
        """Renew ``n`` (run_id, token) leases of one owner: parameters ``expires, owner`` then
        the pairs; returns the run ids renewed."""
        return self._memoized(("renew", n), lambda: self._renew_leases(n))

    def _renew_leases(self, n: int) -> str:
        d = self.dialect
        pair = f"(CAST(? AS TEXT), CAST(? AS {d.bigint}))"
        return (
            f"UPDATE {d.prefix}runs SET lease_expires_at = ? WHERE owner = ? AND "
            f"(run_id, lease_token) IN (VALUES {', '.join([pair] * n)}) RETURNING run_id"
        )

    def update_run(self, columns: tuple[str, ...]) -> str:
        """``UPDATE runs SET <columns> WHERE run_id = ?`` (parameters in that order)."""
        text = self._memo.get(columns)
        if text is None:
            sets = ", ".join(f"{c} = ?" for c in columns)
            text = self._memo[columns] = self.dialect.sql(
                f"UPDATE {self.dialect.prefix}runs SET {sets} WHERE run_id = ?"
            )
        return text
