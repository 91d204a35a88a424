from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tether import Runtime
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore

PG_DSN = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL schema name on the test server, dropped afterwards; skips the test
    when the server is unreachable (fails it under TETHER_TEST_PG_REQUIRED=1)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("TETHER_TEST_PG_REQUIRED") == "1":
            pytest.fail(f"PostgreSQL unreachable at {PG_DSN}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_DSN} (set TETHER_TEST_PG): {exc}")
    schema = f"{prefix}_{secrets.token_hex(5)}"
    try:
        yield schema
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def rt() -> AsyncIterator[Runtime]:
    async with Runtime(MemoryStore(), recover=False) as runtime:
        yield runtime


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], RunStore]]:
    """A factory of independent store instances over one database (SQLite file or a fresh
    PostgreSQL schema), for two Runtimes that stand for two processes."""
    if request.param == "sqlite":
        from tether.store.sqlite import SqliteStore

        path = tmp_path / "shared.db"
        yield lambda: SqliteStore(path)
        return
    from tether.store.postgres import PostgresStore

    with pg_schema("tether_graph") as schema:
        yield lambda: PostgresStore(PG_DSN, schema=schema)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime on each backend (memory, a SQLite file, a fresh PostgreSQL schema), for what
    must behave alike on all three."""
    if request.param == "memory":
        async with Runtime(MemoryStore(), recover=False) as runtime:
            yield runtime
        return
    store: RunStore
    if request.param == "sqlite":
        from tether.store.sqlite import SqliteStore

        store = SqliteStore(tmp_path / "any.db")
        async with Runtime(store, recover=False) as runtime:
            yield runtime
        return
    from tether.store.postgres import PostgresStore

    with pg_schema("tether_any") as schema:
        async with Runtime(PostgresStore(PG_DSN, schema=schema), recover=False) as runtime:
            yield runtime
