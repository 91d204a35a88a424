"""Schema v22 keys approvers by tenant: a database an older tether wrote (approvers keyed by id
alone) keeps its approvers, as approvers of runs without a tenant, and then holds one per
tenant under one id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tether.store.approvals import ApprovalStore, Approver
from tether.store.sqlite import SqliteStore

Execute = Callable[..., Awaitable[None]]


async def _rewind_to_v21(execute: Execute, real: str) -> None:
    """The approvers table as v12 made it, with one approver, and no v22 row."""
    await execute("DROP TABLE {p}approvers")
    await execute(
        "CREATE TABLE {p}approvers (approver_id TEXT PRIMARY KEY, role TEXT NOT NULL, "
        f"public_key TEXT NOT NULL, created_at {real} NOT NULL, updated_at {real} NOT NULL)"
    )
    await execute("INSERT INTO {p}approvers VALUES ('bob', 'ops', 'PEM-bob', 1, 2)")
    await execute("DELETE FROM {p}schema_version WHERE version >= 22")


async def _after_migration(store: Any) -> None:
    assert isinstance(store, ApprovalStore)
    bob = await store.get_approver("bob")
    assert bob is not None
    assert (bob.role, bob.public_key, bob.created_at, bob.updated_at, bob.tenant) == (
        "ops",
        "PEM-bob",
        1.0,
        2.0,
        None,
    )
    assert await store.get_approver("bob", "acme") is None
    await store.put_approver(Approver("bob", "finance", "PEM-acme-bob", tenant="acme"))
    assert [(a.tenant, a.public_key) for a in await store.list_approvers()] == [
        (None, "PEM-bob"),
        ("acme", "PEM-acme-bob"),
    ]


async def test_sqlite_keeps_its_approvers_as_approvers_of_no_tenant(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    await store.setup()

    async def execute(statement: str, params: tuple[Any, ...] = ()) -> None:
        with store._tx as db:
            db.execute(statement.format(p="tether_"), params)

    await _rewind_to_v21(execute, "REAL")
    await store.close()
    store = SqliteStore(path)
    await store.setup()
    try:
        await _after_migration(store)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_keeps_its_approvers_as_approvers_of_no_tenant(
    pg_dsn: str, pg_schema: str
) -> None:
    import psycopg

    from tether.store.postgres import PostgresStore

    store = PostgresStore(pg_dsn, schema=pg_schema, pool_size=2)
    await store.setup()
    await store.close()

    async def execute(statement: str, params: tuple[Any, ...] = ()) -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(statement.format(p=f'"{pg_schema}".tether_'), params)

    await _rewind_to_v21(execute, "DOUBLE PRECISION")
    store = PostgresStore(pg_dsn, schema=pg_schema, pool_size=2)
    await store.setup()
    try:
        await _after_migration(store)
    finally:
        await store.close()
