"""Store fixtures: ``store_factory`` over memory, SQLite and PostgreSQL.

PostgreSQL comes from ``TETHER_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each test gets a fresh schema, dropped afterwards. Unreachable server: those tests skip, unless
``TETHER_TEST_PG_REQUIRED=1`` (set it in CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tether.store import MemoryStore, RunStore, SqliteStore
from tether.testing import FakeClock
from tether.testing.store_conformance import StoreFactory

PG_DSN = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'tether[postgres]'")
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL unreachable at {PG_DSN} (set TETHER_TEST_PG): {exc}"
        if os.environ.get("TETHER_TEST_PG_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return PG_DSN


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A fresh schema name; the schema (created by the store's setup) is dropped afterwards."""
    import psycopg

    name = f"tether_test_{secrets.token_hex(5)}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
async def store_factory(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    kind: str = request.param
    opened: list[RunStore] = []
    memory = MemoryStore(clock)
    if kind == "postgres":
        dsn: str = request.getfixturevalue("pg_dsn")
        schema: str = request.getfixturevalue("pg_schema")

    async def factory() -> RunStore:
        store: RunStore
        if kind == "memory":
            return memory
        if kind == "sqlite":
            store = SqliteStore(tmp_path / "runs.db", clock=clock)
        else:
            from tether.store.postgres import PostgresStore

            store = PostgresStore(dsn, schema=schema, clock=clock, pool_size=4)
        opened.append(store)
        await store.setup()
        return store

    yield factory
    for store in opened:
        await store.close()
