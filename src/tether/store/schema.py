"""Tables and versioned migrations of the SQL backends.

``migrations(dialect)`` lists ``(version, statements)`` in order. ``setup()`` of a backend takes a
database-wide lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``pg_advisory_xact_lock``), reads the
version table, applies what is missing and records it, all in one transaction, so two processes
racing through ``setup()`` apply each migration exactly once. A database written by a newer tether
is refused with ``SchemaVersionError`` rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.core.errors import SchemaVersionError
from tether.store import (
    claim_order,
    lease_takeovers,
    run_usage,
    sql_api_keys,
    sql_approvals,
    sql_audit,
    sql_budget,
    sql_evaluation_log,
    sql_pii_vault,
    sql_queue_limits,
    sql_timers,
    sql_workers,
)
from tether.store.sql_base import Dialect

Migration = tuple[int, list[str]]


def version_table(d: Dialect) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {d.prefix}schema_version "
        f"(version INTEGER PRIMARY KEY, applied_at {d.real} NOT NULL)"
    )


def current_version(d: Dialect) -> str:
    return f"SELECT COALESCE(MAX(version), 0) FROM {d.prefix}schema_version"


def record_version(d: Dialect) -> str:
    return d.sql(f"INSERT INTO {d.prefix}schema_version (version, applied_at) VALUES (?, ?)")


def _v1(d: Dialect) -> list[str]:
    """Runs, checkpoints, node writes, the effect journal, events and lifecycle transitions."""
    p, b, r, i = d.prefix, d.blob, d.real, d.bigint
    return [
        f"""CREATE TABLE {p}runs (
            run_id TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            status TEXT NOT NULL,
            input {b},
            step {i} NOT NULL DEFAULT 0,
            result {b},
            error {b},
            escalation {b},
            parent_run_id TEXT,
            parent_step {i},
            idempotency_key TEXT UNIQUE,
            input_hash TEXT,
            owner TEXT,
            lease_token {i} NOT NULL DEFAULT 0,
            lease_expires_at {r} NOT NULL DEFAULT 0,
            created_at {r} NOT NULL,
            updated_at {r} NOT NULL,
            event_seq {i} NOT NULL DEFAULT 0,
            metadata {b} NOT NULL
        ){d.runs_options}""",
        f"CREATE INDEX tether_runs_claim ON {p}runs (status, lease_expires_at)",
        f"CREATE INDEX tether_runs_created ON {p}runs (created_at)",
        f"CREATE INDEX tether_runs_parent ON {p}runs (parent_run_id)",
        f"""CREATE TABLE {p}checkpoints (
            run_id TEXT NOT NULL,
            step {i} NOT NULL,
            delta {b} NOT NULL,
            next_tasks {b} NOT NULL,
            snapshot {b},
            barriers {b} NOT NULL,
            created_at {r} NOT NULL,
            meta {b} NOT NULL,
            PRIMARY KEY (run_id, step)
        )""",
        f"""CREATE TABLE {p}node_writes (
            run_id TEXT NOT NULL,
            step {i} NOT NULL,
            task_id TEXT NOT NULL,
            node TEXT NOT NULL,
            status TEXT NOT NULL,
            writes {b},
            goto {b},
            interrupt {b},
            resume {b} NOT NULL,
            created_at {r} NOT NULL,
            PRIMARY KEY (run_id, step, task_id)
        )""",
        f"""CREATE TABLE {p}effects (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            request {b},
            result {b},
            error {b},
            attempts INTEGER NOT NULL,
            created_at {r} NOT NULL,
            updated_at {r} NOT NULL,{d.effects_order_column}
            PRIMARY KEY (run_id, key)
        )""",
        f"""CREATE TABLE {p}events (
            run_id TEXT NOT NULL,
            seq {i} NOT NULL,
            type TEXT NOT NULL,
            ts {r} NOT NULL,
            step {i},
            node TEXT,
            data {b} NOT NULL,
            PRIMARY KEY (run_id, seq)
        ){d.compact_rows}""",
        f"""CREATE TABLE {p}transitions (
            run_id TEXT NOT NULL,
            seq {i} NOT NULL,
            src TEXT,
            dst TEXT NOT NULL,
            ts {r} NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ){d.compact_rows}""",
    ]


def _v2(d: Dialect) -> list[str]:
    """The control plane (``tether.store.control``): token buckets and flags."""
    p, b, r = d.prefix, d.blob, d.real
    return [
        f"""CREATE TABLE {p}buckets (
            bucket TEXT PRIMARY KEY,
            tokens {r} NOT NULL,
            updated_at {r} NOT NULL
        )""",
        f"""CREATE TABLE {p}flags (
            key TEXT PRIMARY KEY,
            value {b} NOT NULL,
            updated_at {r} NOT NULL
        )""",
    ]


def _v3(d: Dialect) -> list[str]:
    """Indexes for listing runs by status or workflow, newest first, page by page (keyset):
    the listing reads one page of an index instead of sorting every matching run."""
    p = d.prefix
    return [
        f"CREATE INDEX tether_runs_status_created ON {p}runs (status, created_at, run_id)",
        f"CREATE INDEX tether_runs_workflow_created ON {p}runs (workflow, created_at, run_id)",
    ]


def _v4(d: Dialect) -> list[str]:
    """No table changes: PostgreSQL re-creates its commit function (``pg_commit``: the run row
    is updated under the fence first, no separate ``SELECT ... FOR UPDATE``)."""
    return []


def _v5(d: Dialect) -> list[str]:
    """The thread a run belongs to (``RunRecord.thread_id``) as a column with its own index, so
    finding a thread's newest runs reads a few index entries instead of scanning every run;
    existing rows get it from ``metadata["thread_id"]`` (a JSON string there, else NULL)."""
    p = d.prefix
    return [
        f"ALTER TABLE {p}runs ADD COLUMN thread_id TEXT",
        _backfill_thread_id(d),
        f"CREATE INDEX tether_runs_thread_created ON {p}runs (thread_id, created_at, run_id)",
    ]


def _backfill_thread_id(d: Dialect) -> str:
    """Copy ``metadata["thread_id"]`` (when a JSON string) into the column. The metadata blob is
    ``core.serde`` JSON (UTF-8); only rows naming the key are parsed, and the nested CASEs keep
    a blob the database cannot parse from failing the migration (its run gets no thread)."""
    p = d.prefix
    if d.name == "sqlite":
        m = "CAST(metadata AS TEXT)"
        return (
            f"UPDATE {p}runs SET thread_id = CASE WHEN json_valid({m}) THEN "
            f"CASE WHEN json_type({m}, '$.thread_id') = 'text' "
            f"THEN json_extract({m}, '$.thread_id') END END "
            "WHERE instr(metadata, CAST('\"thread_id\"' AS BLOB)) > 0"
        )
    # PostgreSQL's jsonb refuses a string holding U+0000 (JSON ``\u0000``): such rows are left
    m, j = "convert_from(metadata, 'UTF8')", "convert_from(metadata, 'UTF8')::jsonb"
    return (
        f"UPDATE {p}runs SET thread_id = CASE WHEN position(convert_to('\\u0000', 'UTF8') IN "
        f"metadata) = 0 THEN CASE WHEN jsonb_typeof({j} -> 'thread_id') = 'string' "
        f"THEN {j} ->> 'thread_id' END END "
        "WHERE position(convert_to('\"thread_id\"', 'UTF8') IN metadata) > 0"
    )


def _v6(d: Dialect) -> list[str]:
    """SQLite keeps each run's input in a table of its own (``run_inputs``): SQLite rewrites a
    whole row on every UPDATE, so an input in the run row made every step's commit copy it (a
    1 MB input cost each step ~0.2 ms more). PostgreSQL keeps a large input out of line
    (TOAST) and leaves it untouched by updates already: no change there."""
    if not d.inputs_apart:
        return []
    p = d.prefix
    return [
        f"CREATE TABLE {p}run_inputs (run_id TEXT PRIMARY KEY, input {d.blob} NOT NULL)",
        f"INSERT INTO {p}run_inputs (run_id, input) "
        f"SELECT run_id, input FROM {p}runs WHERE input IS NOT NULL",
        f"UPDATE {p}runs SET input = NULL WHERE input IS NOT NULL",
    ]


def _v7(d: Dialect) -> list[str]:
    """Queues (issue 10): a run's named ``queue``, ``priority`` (higher first), ``tenant`` and
    ``available_at`` (claimable only from then on: delays, backoff, durable sleep), with an
    index the claim reads its candidates from."""
    p, r = d.prefix, d.real
    return [
        f"ALTER TABLE {p}runs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default'",
        f"ALTER TABLE {p}runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
        f"ALTER TABLE {p}runs ADD COLUMN tenant TEXT",
        f"ALTER TABLE {p}runs ADD COLUMN available_at {r} NOT NULL DEFAULT 0",
        f"CREATE INDEX tether_runs_queue_claim ON {p}runs (status, queue, priority, created_at)",
    ]


def _v18(d: Dialect) -> list[str]:
    """Partial indexes of the events the store counts: lease takeovers and model calls."""
    return lease_takeovers.migration(d) + run_usage.migration(d)


def _v21(d: Dialect) -> list[str]:
    """A task's events travel with its node write (``NodeWrite.events``), so a step finished
    by another runtime after a crash commits the events of the tasks it does not run again."""
    return [f"ALTER TABLE {d.prefix}node_writes ADD COLUMN events {d.blob}"]


def _v23(d: Dialect) -> list[str]:
    """The claim reads its candidates in claim order from an index of the queue (the unowned
    ACTIVE runs), not every claimable run sorted on each claim (``store.claim_order``)."""
    return claim_order.migration(d.prefix)


def _v24(d: Dialect) -> list[str]:
    """The claim under shared limits reads its candidates in claim order from indexes too, not
    every claimable run sorted (``store.sql_queue_limits``): PostgreSQL's claim function is
    replaced (SQLite's statement lives in the code, so it has nothing to migrate)."""
    return []


# Append a version for every change; never edit one a database may already have applied.
_VERSIONS: list[tuple[int, Callable[[Dialect], list[str]]]] = [
    (1, _v1),
    (2, _v2),
    (3, _v3),
    (4, _v4),
    (5, _v5),
    (6, _v6),
    (7, _v7),
    (8, sql_workers.migration),
    (9, sql_timers.migration),
    (10, sql_queue_limits.migration),
    (11, sql_budget.migration),
    (12, sql_approvals.migration),
    (13, sql_audit.migration),
    (14, sql_pii_vault.migration),
    (15, sql_api_keys.migration),
    (17, sql_evaluation_log.migration),
    (18, _v18),
    (19, sql_timers.placement_migration),
    (20, sql_timers.timezone_migration),
    (21, _v21),
    (22, sql_approvals.tenant_migration),
    (23, _v23),
    (24, _v24),
]
LATEST_VERSION = _VERSIONS[-1][0]


def migrations(d: Dialect) -> list[Migration]:
    extra = d.extra_migrations()
    return [(v, build(d) + extra.get(v, [])) for v, build in _VERSIONS]


def versions() -> list[int]:
    """Every schema version, in order."""
    return [v for v, _ in _VERSIONS]


def describe(version: int) -> str:
    """What a schema version adds: the first paragraph of its migration's docstring."""
    for v, build in _VERSIONS:
        if v == version:
            first = " ".join((build.__doc__ or "").strip().split("\n\n")[0].split())
            return first.removeprefix(f"Schema v{v}: ")
    raise ValueError(f"no schema version {version}")


def pending(d: Dialect, current: int, where: str) -> list[Migration]:
    """Migrations still to apply to a database at ``current``; refuses a newer database."""
    if current > LATEST_VERSION:
        raise SchemaVersionError(
            f"the tether schema in {where} is at version {current}, newer than this tether "
            f"understands ({LATEST_VERSION}); upgrade tether (pip install -U tether) or point it "
            "at another database"
        )
    return [m for m in migrations(d) if m[0] > current]
