"""PostgreSQL-only behaviour: schema isolation, migrations, connection errors."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import psycopg
import pytest

from tether.core.errors import SchemaVersionError, StoreError
from tether.core.lifecycle import RunStatus
from tether.store import schema
from tether.store.control import refill, take
from tether.store.postgres import PostgresStore
from tether.store.schema import _VERSIONS, LATEST_VERSION
from tether.store.types import Checkpoint, RunRecord
from tether.testing import FakeClock
from tether.testing.store_helpers import T0

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
            "tether_queue_limits",
            "tether_workers",
            "tether_timers",
            "tether_schedules",
            "tether_budget_ledgers",
            "tether_approvals",
            "tether_approvers",
            "tether_audit_log",
            "tether_message_nonces",
            "tether_pii_vault",
            "tether_pii_keys",
            "tether_shadow_log",
            "tether_eval_flags",
            "tether_api_keys",
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
        # every version (numbers taken by work in progress may be skipped)
        assert _versions(pg_dsn, pg_schema) == [v for v, _ in _VERSIONS]
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


async def test_take_tokens_arithmetic_matches_the_python_helpers(
    pg_dsn: str, pg_schema: str
) -> None:
    """The plpgsql take mirrors control.refill/take: same waits and tokens, bit for bit."""
    rng = random.Random(7)
    clock = FakeClock()
    store = PostgresStore(pg_dsn, schema=pg_schema, clock=clock)
    await store.setup()
    cases = []
    for i in range(400):
        burst = rng.choice([1, 3, 10.5, rng.uniform(0.01, 1000)])
        rate = rng.choice([1, 0.5, 1e-6, rng.uniform(1e-3, 1e4)])
        n = rng.choice([1, burst, rng.uniform(1e-3, burst)])
        tokens = rng.choice([0.0, burst, burst - 1e-10, n - 1e-10, rng.uniform(0, burst)])
        updated = T0 + rng.uniform(-5, 5)
        now = T0 + rng.choice([0.0, rng.uniform(-1, 1), rng.uniform(0, 1e-3), 1e6])
        cases.append((f"b{i}", tokens, updated, now, rate, burst, n))
    with psycopg.connect(pg_dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            f'INSERT INTO "{pg_schema}".tether_buckets VALUES (%s, %s, %s)',
            [(b, tokens, updated) for b, tokens, updated, *_ in cases],
        )
    try:
        waits = {}
        for bucket, _tokens, _updated, now, rate, burst, n in cases:
            clock.set(now)
            waits[bucket] = await store.take_tokens(bucket, rate, burst, n)
        waits["new"] = await store.take_tokens("new", 2, 3, 1)  # a new bucket starts full
    finally:
        await store.close()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(f'SELECT bucket, tokens, updated_at FROM "{pg_schema}".tether_buckets')
        stored = {b: (t, u) for b, t, u in rows}
    assert waits["new"] == 0.0 and stored["new"] == (2.0, clock.now())
    for bucket, tokens, updated, now, rate, burst, n in cases:
        left, wait = take(refill(tokens, updated, now, rate, burst), n, rate)
        assert (waits[bucket], stored[bucket]) == (wait, (left, now)), (bucket, tokens, n)


async def test_an_older_schema_is_upgraded_in_place(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setattr(schema, "_VERSIONS", schema._VERSIONS[:1])
        m.setattr(schema, "LATEST_VERSION", 1)
        old = PostgresStore(pg_dsn, schema=pg_schema)
        await old.setup()
        await old.close()
    with psycopg.connect(pg_dsn) as conn:  # a run as a v1 tether wrote it (v1's columns only)
        conn.execute(
            f'INSERT INTO "{pg_schema}".tether_runs (run_id, workflow, status, created_at, '
            "updated_at, metadata) VALUES ('r1', 'wf', 'RECEIVED', 0, 0, '\\x7b7d')"
        )
    assert _versions(pg_dsn, pg_schema) == [1]
    assert "tether_buckets" not in _tables(pg_dsn, pg_schema)
    store = PostgresStore(pg_dsn, schema=pg_schema)
    try:
        await store.setup()
        # every version (numbers taken by work in progress may be skipped)
        assert _versions(pg_dsn, pg_schema) == [v for v, _ in _VERSIONS]
        assert (await store.get_run("r1")).status is RunStatus.RECEIVED
        assert await store.take_tokens("b", 1, 1) == 0.0
        assert await store.take_tokens("b", 1, 1) > 0.0
        await store.set_flag("k", [1])
        assert await store.get_flags() == {"k": [1]}
    finally:
        await store.close()


async def test_take_tokens_is_one_statement(pg_dsn: str, pg_schema: str) -> None:
    """Called per tool call: one round trip, whatever the bucket's state."""
    store = PostgresStore(pg_dsn, schema=pg_schema, pool_size=1)
    await store.setup()
    sent: list[str] = []
    try:
        async with store._conn() as conn:
            real = conn.execute

            async def spy(query: Any, *args: Any, **kwargs: Any) -> Any:
                sent.append(str(query))
                return await real(query, *args, **kwargs)

            conn.execute = spy  # type: ignore[method-assign]
        await store.take_tokens("b", 1, 1)  # creates the bucket
        await store.take_tokens("b", 1, 1)  # refused: empty
        await store.take_tokens("b", 1, 1)
        assert len(sent) == 3 and all("take_tokens(" in q for q in sent), sent
    finally:
        await store.close()
