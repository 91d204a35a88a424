"""PostgreSQL specifics: a server without pgvector is refused clearly; pgserver runs postgres
unprivileged when the tests run as root; the HNSW path filters by scope and widens its search
when the scope is a small part of the table."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tether.core.errors import ConfigurationError
from tether.llm.embeddings import HashingEmbedder
from tether.memory import VECTOR_ONLY, MemoryScope, NewMemory, open_memory
from tether.memory.pg_episodic import PgMemory

SYSTEM_PG = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _has_pgvector(dsn: str) -> bool | None:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError:
        return None
    return row is not None


async def test_server_without_pgvector_is_refused_with_a_fix() -> None:
    """The system PostgreSQL 15 here has no pgvector: setup() says so and how to fix it."""
    has = _has_pgvector(SYSTEM_PG)
    if has is None:
        if os.environ.get("TETHER_TEST_PG_REQUIRED") == "1":
            pytest.fail(f"PostgreSQL unreachable at {SYSTEM_PG}")
        pytest.skip(f"PostgreSQL unreachable at {SYSTEM_PG} (set TETHER_TEST_PG)")
    if has:
        pytest.skip("this PostgreSQL has pgvector; the refusal needs a server without it")
    m = open_memory(SYSTEM_PG, embedder=HashingEmbedder(16))
    with pytest.raises(ConfigurationError, match="no pgvector extension") as err:
        await m.setup()
    assert "pgserver" in str(err.value) and "sqlite" in str(err.value)
    await m.close()


def test_pgserver_runs_postgres_unprivileged(pgvector_server: Any) -> None:
    """postgres refuses to run as root: under root (CI containers) pgserver runs it as its own
    system user; otherwise as the current user. Either way the server is up with pgvector."""
    import psutil

    info = pgvector_server.get_postmaster_info()
    owner = psutil.Process(info.pid).uids().real
    if os.geteuid() == 0:
        import pwd

        assert owner != 0
        assert pwd.getpwuid(owner).pw_name == "pgserver"
    else:
        assert owner == os.geteuid()
    assert _has_pgvector(pgvector_server.get_uri())


async def test_hnsw_path_filters_by_scope(pg_memory_uri: str) -> None:
    m = open_memory(pg_memory_uri, embedder=HashingEmbedder(64))
    assert isinstance(m, PgMemory)
    await m.setup()
    for tenant in ("big1", "big2"):
        await m.add_many(
            [NewMemory(f"{tenant} note {i} topic{i % 9} code C{i * 31 % 997}") for i in range(300)],
            scope=MemoryScope(tenant),
        )
    small = MemoryScope("small", agent="x")
    mine = await m.add_many(
        [NewMemory(f"small note {i} topic{i % 9} code C{i * 31 % 997}") for i in range(8)],
        scope=small,
    )
    for memory in mine:
        hits = await m.search(memory.text, scope=small, k=8, ranking=VECTOR_ONLY)
        assert hits[0].memory.id == memory.id
        assert {h.memory.scope for h in hits} == {small} and len(hits) == 8
    await m.close()


async def test_reopen_keeps_vectors_and_refuses_other_dimensions(pg_memory_uri: str) -> None:
    m = open_memory(pg_memory_uri, embedder=HashingEmbedder(64))
    await m.setup()
    a = await m.add("persisted in postgres", scope=MemoryScope("acme"))
    await m.close()
    m = open_memory(pg_memory_uri, embedder=HashingEmbedder(64))
    await m.setup()
    hits = await m.search("persisted in postgres", scope=MemoryScope("acme"))
    assert hits[0].memory.id == a.id
    await m.close()
    other = open_memory(pg_memory_uri, embedder=HashingEmbedder(32))
    with pytest.raises(ConfigurationError, match="64-dimensional"):
        await other.setup()
    await other.close()
