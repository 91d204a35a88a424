"""PostgreSQL specifics: a server without pgvector is refused clearly; pgserver runs postgres
unprivileged when the tests run as root; the HNSW path filters by scope and widens its search
when the scope is a small part of the table; small adds (one INSERT) and big ones (COPY) write
the same rows; the query vector's binary form; durability."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest

from tether.core.errors import ConfigurationError
from tether.llm.embeddings import HashingEmbedder, embed_unit
from tether.memory import VECTOR_ONLY, MemoryScope, NewMemory, Provenance, open_memory
from tether.memory.pg_db import VectorParam
from tether.memory.pg_episodic import INSERT_ROWS, PgMemory, vector_literal

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
    m.exact_below = 0  # through the HNSW index although the table is small
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


async def test_small_adds_insert_and_big_adds_copy_the_same_rows(pg_memory_uri: str) -> None:
    """Up to INSERT_ROWS memories go in as one INSERT of arrays, more as one COPY: both write
    every column (scope parts left out, metadata, int importance, provenance) and the vector."""
    m = open_memory(pg_memory_uri, embedder=HashingEmbedder(64))
    assert isinstance(m, PgMemory)
    await m.setup()
    scope = MemoryScope("acme", agent="a1")
    items = [
        NewMemory(
            f"note {i} about ticket T-{i:04d}",
            metadata={"n": i, "tags": ["x", None]},
            importance=1 if i % 2 else 0.25,
            provenance=Provenance("tool", tool="crm", step=i),
            scope=MemoryScope("acme") if i % 3 == 0 else None,
        )
        for i in range(INSERT_ROWS + 5)
    ]
    for batch, inserted in ((items[:1], True), (items[1:3], True), (items[3:], False)):
        assert (len(batch) <= INSERT_ROWS) == inserted  # else one COPY
        added = await m.add_many(batch, scope=scope)
        for item, memory in zip(batch, added, strict=True):
            stored = await m.get(memory.id, scope=MemoryScope("acme"))
            assert stored == memory
            assert (stored.metadata, stored.importance) == (item.metadata, float(item.importance))
        async with m.db.statement() as tx:
            rows = await tx.fetch(
                "SELECT embedding::text FROM tether_memories WHERE id = ANY(?) ORDER BY key",
                [[a.id for a in added]],
            )
        stored_vectors = np.array([json.loads(r[0]) for r in rows], dtype=np.float32)
        wanted = await embed_unit(m.embedder, [item.text for item in batch])
        np.testing.assert_allclose(stored_vectors, wanted, atol=1e-6)
    assert await m.count(MemoryScope("acme")) == len(items)
    assert await m.count(MemoryScope("acme", agent="a1")) == len(items) - len(items[::3])
    await m.close()


async def test_query_vector_goes_binary_and_reads_back_the_same(pg_memory_uri: str) -> None:
    m = open_memory(pg_memory_uri, embedder=HashingEmbedder(8))
    assert isinstance(m, PgMemory)
    await m.setup()
    v = np.array([0.5, -0.25, 1e-7, 3.0, -1.5, 0.0, 2.5e5, -0.125], dtype=np.float32)
    async with m.db.statement() as tx:
        rows = await tx.fetch(
            "SELECT CAST(? AS vector)::text, CAST(? AS vector) <=> CAST(? AS vector)",
            [VectorParam(v), VectorParam(v), vector_literal(v)],
        )
    assert np.array_equal(np.array(json.loads(rows[0][0]), dtype=np.float32), v)
    assert rows[0][1] == pytest.approx(0.0, abs=1e-6)
    await m.close()


async def test_durability_sets_synchronous_commit(pg_memory_uri: str) -> None:
    """'process' (the default, as the run store's) commits without waiting for the server's
    flush; 'power-loss' waits for it; anything else is refused with the choices."""
    dsn, _, schema = pg_memory_uri.rpartition("schema=")
    dsn = dsn.rstrip("?&")
    for durability, expected in (("process", "off"), ("power-loss", "on")):
        m = PgMemory(dsn, embedder=HashingEmbedder(8), schema=schema, durability=durability)
        await m.setup()
        async with m.db.statement() as tx:
            assert (await tx.fetch("SHOW synchronous_commit"))[0][0] == expected
        await m.close()
    assert PgMemory(dsn, embedder=HashingEmbedder(8)).durability == "process"
    with pytest.raises(ConfigurationError, match=r"'process'.*'power-loss'"):
        PgMemory(dsn, durability="fsync")
    # the store URL's option, as the run store reads it
    via_url = open_memory(f"{pg_memory_uri}&durability=power-loss", embedder=HashingEmbedder(8))
    assert isinstance(via_url, PgMemory) and via_url.durability == "power-loss"
    with pytest.raises(ConfigurationError, match="fsync"):
        open_memory(f"{pg_memory_uri}&durability=fsync", embedder=HashingEmbedder(8))


async def test_keyword_index_has_no_pending_list(pg_memory_uri: str) -> None:
    """GIN's pending list (read whole by every keyword search) is off, also after a reopen."""
    for _ in range(2):
        m = open_memory(pg_memory_uri, embedder=HashingEmbedder(8))
        assert isinstance(m, PgMemory)
        await m.setup()
        await m.add("E4021 on db-prod-07", scope=MemoryScope("acme"))
        async with m.db.statement() as tx:
            rows = await tx.fetch(
                "SELECT reloptions FROM pg_class WHERE oid = 'tether_memories_words'::regclass"
            )
        assert rows[0][0] == ["fastupdate=off"]
        hits = await m.search("E4021", scope=MemoryScope("acme"))
        assert hits[0].keyword_rank == 1
        await m.close()
