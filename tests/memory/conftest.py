"""Memory store fixtures: ``memory_factory`` over in-process, SQLite and PostgreSQL+pgvector.

PostgreSQL with pgvector comes from the PyPI package ``pgserver`` (PostgreSQL 16 + pgvector),
started once per session in a temporary directory, on a Unix socket only. Run as root (CI
containers), pgserver runs the server as a dedicated system user ``pgserver`` (it creates it
with ``useradd``, chowns the data directory to it and opens the directories above it for
traversal), because postgres refuses to run as root; ``test_pgserver_runs_postgres_unprivileged``
checks that path. These tests are never skipped: without pgserver they fail, saying how to fix.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tether.llm.embeddings import HashingEmbedder
from tether.memory import InProcessMemory, MemoryBackend, SqliteMemory
from tether.testing import FakeClock

MEMORY_BACKENDS = ["inprocess", "sqlite", "postgres"]

MemoryFactory = Callable[..., Awaitable[MemoryBackend]]


@pytest.fixture(scope="session")
def pgvector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A PostgreSQL 16 with pgvector for this test session (pgserver)."""
    try:
        import pgserver
    except ImportError:
        pytest.fail(
            "the memory tests need pgserver (PostgreSQL with pgvector): pip install pgserver"
        )
    server = pgserver.get_server(
        tmp_path_factory.mktemp("pgvector") / "data", cleanup_mode="delete"
    )
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pgvector_uri(pgvector_server: Any) -> str:
    return str(pgvector_server.get_uri())


@pytest.fixture
def pg_memory_uri(pgvector_uri: str) -> Iterator[str]:
    """The pgvector server's URL with a fresh schema, dropped afterwards."""
    import psycopg

    name = f"mem_{secrets.token_hex(5)}"
    sep = "&" if "?" in pgvector_uri else "?"
    yield f"{pgvector_uri}{sep}schema={name}"
    with psycopg.connect(pgvector_uri, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=MEMORY_BACKENDS)
async def memory_factory(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[MemoryFactory]:
    """Makes opened memory stores of one backend, with the fake clock and a deterministic
    embedder unless told otherwise; closes them afterwards. PostgreSQL: one fresh schema per
    test."""
    opened: list[MemoryBackend] = []
    kind = request.param
    pg_uri = request.getfixturevalue("pg_memory_uri") if kind == "postgres" else ""

    async def make(**kwargs: Any) -> MemoryBackend:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("embedder", HashingEmbedder(128))
        m: MemoryBackend
        if kind == "inprocess":
            m = InProcessMemory(**kwargs)
        elif kind == "sqlite":
            m = SqliteMemory(str(tmp_path / "tether.db"), **kwargs)
        else:
            from tether.memory import open_memory

            m = open_memory(pg_uri, **kwargs)
        await m.setup()
        opened.append(m)
        return m

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for m in opened:
        await m.close()
