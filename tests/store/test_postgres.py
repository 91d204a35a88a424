"""PostgreSQL-only behaviour: schema isolation, migrations, connection errors."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tether.core.errors import SchemaVersionError, StoreError
from tether.core.lifecycle import RunStatus
from tether.store.postgres import PostgresStore
from tether.store.schema import LATEST_VERSION
from tether.store.types import Checkpoint, RunRecord

pytestmark = pytest.mark.postgres


def _versions(dsn: str, schema: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f'SELECT version FROM "{schema}".tether_schema_version ORDER BY 1')
        return [v for (v,) in rows]


def _tables(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
        return {name for (name,) in rows}


async def test_schemas_isolate_deployments(pg_dsn: str, pg_schema: str) -> None:
    other_schema = pg_schema + "_b"
    a = PostgresStore(pg_dsn, schema=pg_schema)
    b = PostgresStore(pg_dsn, schema=other_schema)
    try:
        await a.setup()
        await b.setup()
        await a.create_run(
            RunRecord("r1", "wf", RunStatus.RECEIVED), Checkpoint("r1", 0, [], [], {}), []
        )
        assert [r.run_id for r in await a.list_runs()] == ["r1"]
        assert await b.list_runs() == []
        expected = {
            "tether_runs",
            "tether_checkpoints",
            "tether_node_writes",
            "tether_effects",
            "tether_events",
            "tether_transitions",
            "tether_buckets",
            "tether_flags",
            "tether_schema_version",
        }
        assert _tables(pg_dsn, pg_schema) == expected
    finally:
        await a.close()
        await b.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other_schema}" CASCADE')


async def test_concurrent_setup_is_safe(pg_dsn: str, pg_schema: str) -> None:
    stores = [PostgresStore(pg_dsn, schema=pg_schema, pool_size=1) for _ in range(6)]
    try:
        await asyncio.gather(*(s.setup() for s in stores))
        await stores[0].setup()
        assert _versions(pg_dsn, pg_schema) == list(range(1, LATEST_VERSION + 1))
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_newer_schema_is_refused(pg_dsn: str, pg_schema: str) -> None:
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    await store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{pg_schema}".tether_schema_version VALUES (%s, 0)',
            (LATEST_VERSION + 1,),
        )
    newer = PostgresStore(pg_dsn, schema=pg_schema)
    with pytest.raises(SchemaVersionError, match="upgrade tether"):
        await newer.setup()
    await newer.close()


async def test_odd_schema_names_are_quoted(pg_dsn: str, pg_schema: str) -> None:
    name = pg_schema + '_Odd "Name"'
    store = PostgresStore(pg_dsn, schema=name)
    try:
        await store.setup()
        run, created = await store.create_run(
            RunRecord("r1", "wf", RunStatus.RECEIVED), Checkpoint("r1", 0, [], [], {}), []
        )
        assert created and await store.get_run("r1") == run
    finally:
        await store.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            quoted = name.replace('"', '""')
            conn.execute(f'DROP SCHEMA IF EXISTS "{quoted}" CASCADE')


async def test_use_before_setup_is_an_actionable_error(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, schema="never_created")
    with pytest.raises(StoreError, match="setup"):
        await store.get_run("r1")


async def test_unreachable_server_is_a_store_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)
    with pytest.raises(StoreError, match="cannot connect"):
        await store.setup()
    await store.close()


@pytest.mark.parametrize(
    ("url_durability", "expected"), [(None, "off"), ("process", "off"), ("power-loss", "on")]
)
async def test_durability_sets_synchronous_commit(
    pg_dsn: str, pg_schema: str, url_durability: str | None, expected: str
) -> None:
    from tether.store.url import open_store

    query = f"?schema={pg_schema}" + (f"&durability={url_durability}" if url_durability else "")
    store = open_store(pg_dsn + query)
    assert isinstance(store, PostgresStore)
    await store.setup()
    try:
        async with store._conn() as conn:
            row = await (await conn.execute("SHOW synchronous_commit")).fetchone()
        assert row is not None and row[0] == expected
    finally:
        await store.close()


def test_unknown_durability_is_a_configuration_error(pg_dsn: str) -> None:
    from tether.core.errors import ConfigurationError
    from tether.store.url import open_store

    with pytest.raises(ConfigurationError, match="durability"):
        open_store(pg_dsn + "?durability=sometimes")
    with pytest.raises(ConfigurationError, match="durability"):
        PostgresStore(pg_dsn, durability="sometimes")
