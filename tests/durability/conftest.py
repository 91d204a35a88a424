from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tether.store.protocol import RunStore

PG_DSN = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL on each backend: a SQLite file, a fresh PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
        return
    if not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield f"{PG_DSN}?schema={schema}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], RunStore]]:
    """A factory of independent store instances over one shared database."""
    if request.param == "sqlite":
        from tether.store.sqlite import SqliteStore

        path = tmp_path / "shared.db"
        yield lambda: SqliteStore(path)
        return
    if not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}")
    import psycopg

    from tether.store.postgres import PostgresStore

    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield lambda: PostgresStore(PG_DSN, schema=schema)
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
