"""The runs' ``thread_id`` column (schema v5): a thread's runs are read from their own index, and
a database migrated from v4 gets the column filled from each run's metadata."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tether.core import serde
from tether.core.lifecycle import RunStatus
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.store.types import Commit

Execute = Callable[..., Awaitable[None]]

# metadata of pre-v5 runs: a thread run, a non-string "thread_id", one nested deeper, none, and
# one the database's JSON parser may refuse (PostgreSQL jsonb: U+0000 in a string)
_OLD_RUNS = {
    "old-a1": {"thread_id": "a", "thread_base": None},
    "old-a2": {"x": 1, "thread_id": "a"},
    "old-num": {"thread_id": 7},
    "old-nested": {"sub": {"thread_id": "a"}},
    "old-plain": {"step_limit": 5},
    "old-nul": {"note": "nul\u0000here", "other": "thread_id"},
}


def _plan(store: SqliteStore, cursor: str | None) -> list[str]:
    sql = store._sql.list_runs(None, False, False, cursor, True)
    params = [None] * sql.count("?")
    return [row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize("cursor", [None, "before", "after"])
async def test_thread_listing_reads_the_thread_index_in_order(
    tmp_path: Path, cursor: str | None
) -> None:
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    plan = _plan(store, cursor)
    await store.close()
    assert any("USING INDEX tether_runs_thread_created (thread_id=?" in s for s in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


async def _rewind_to_v4(execute: Execute) -> None:
    """Make the database look like one a v4 tether wrote: no thread column, no v5 row."""
    for statement in (
        # what later versions added (v7 queue columns, v8-v14 tables), newest first
        "DROP INDEX IF EXISTS {s}tether_runs_queued",  # v23 (the claim's index of the queue)
        "ALTER TABLE {p}node_writes DROP COLUMN events",  # v21 (a task's events)
        "DROP INDEX IF EXISTS {s}tether_events_takeovers",  # v18 (counted events)
        "DROP INDEX IF EXISTS {s}tether_events_model_calls",
        "DROP TABLE IF EXISTS {p}eval_flags",  # v17 (evaluation log)
        "DROP TABLE IF EXISTS {p}shadow_log",
        "DROP TABLE IF EXISTS {p}api_keys",  # v15 (API keys)
        "DROP INDEX IF EXISTS {s}tether_runs_tenant_created",
        "DROP TABLE IF EXISTS {p}pii_keys",  # v14 (PII vault)
        "DROP TABLE IF EXISTS {p}pii_vault",
        "DROP TABLE IF EXISTS {p}message_nonces",  # v13 (audit log)
        "DROP TABLE IF EXISTS {p}audit_log",
        "DROP TABLE IF EXISTS {p}approvers",  # v12 (approvals)
        "DROP TABLE IF EXISTS {p}approvals",
        "DROP TABLE IF EXISTS {p}budget_ledgers",  # v11 (budget ledgers)
        "DROP TABLE IF EXISTS {p}queue_limits",
        "DROP INDEX IF EXISTS {s}tether_runs_tenant",
        "DROP TABLE IF EXISTS {p}timers",
        "DROP TABLE IF EXISTS {p}schedules",
        "DROP TABLE IF EXISTS {p}workers",
        "DROP INDEX {s}tether_runs_queue_claim",
        "ALTER TABLE {p}runs DROP COLUMN queue",
        "ALTER TABLE {p}runs DROP COLUMN priority",
        "ALTER TABLE {p}runs DROP COLUMN tenant",
        "ALTER TABLE {p}runs DROP COLUMN available_at",
        "DROP INDEX {s}tether_runs_thread_created",
        "ALTER TABLE {p}runs DROP COLUMN thread_id",
        "DROP TABLE IF EXISTS {p}run_inputs",  # v6 (SQLite)
        "DELETE FROM {p}schema_version WHERE version >= 5",
    ):
        await execute(statement)


async def _insert_old(execute: Execute, marks: str) -> None:
    cols = "run_id, workflow, status, created_at, updated_at, metadata"
    for i, (run_id, meta) in enumerate(_OLD_RUNS.items()):
        await execute(
            f"INSERT INTO {{p}}runs ({cols}) VALUES ({marks})",
            (run_id, "wf", RunStatus.COMPLETED.value, float(i), float(i), serde.dumps(meta)),
        )


def _check_migrated(runs: dict[str, str | None]) -> None:
    assert runs == {
        "old-a1": "a",
        "old-a2": "a",
        "old-num": None,
        "old-nested": None,
        "old-plain": None,
        "old-nul": None,
    }


async def _after_migration(store: RunStore) -> None:
    _check_migrated({r.run_id: r.thread_id for r in await store.list_runs(limit=100)})
    assert [r.run_id for r in await store.list_runs(thread_id="a")] == ["old-a2", "old-a1"]


async def test_sqlite_migration_fills_thread_from_metadata(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    await store.setup()

    async def execute(statement: str, params: tuple[Any, ...] = ()) -> None:
        with store._tx as db:
            db.execute(statement.format(p="tether_", s=""), params)

    await _rewind_to_v4(execute)
    await _insert_old(execute, ", ".join("?" * 6))
    await store.close()
    store = SqliteStore(path)
    await store.setup()
    try:
        await _after_migration(store)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_migration_fills_thread_from_metadata(pg_dsn: str, pg_schema: str) -> None:
    import psycopg

    from tether.store.postgres import PostgresStore

    store = PostgresStore(pg_dsn, schema=pg_schema, pool_size=2)
    await store.setup()
    await store.close()
    prefix = f'"{pg_schema}".tether_'
    with psycopg.connect(pg_dsn, autocommit=True) as conn:

        async def execute(statement: str, params: tuple[Any, ...] | None = None) -> None:
            conn.execute(statement.format(p=prefix, s=f'"{pg_schema}".'), params)

        await _rewind_to_v4(execute)
        await _insert_old(execute, ", ".join(["%s"] * 6))
    store = PostgresStore(pg_dsn, schema=pg_schema, pool_size=2)
    await store.setup()
    try:
        await _after_migration(store)
        # the recompiled commit function returns the new column
        run = await store.commit("old-a1", None, Commit(metadata={"touched": True}))
        assert run.thread_id == "a"
    finally:
        await store.close()
