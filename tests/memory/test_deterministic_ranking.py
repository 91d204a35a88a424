"""The same search on two fresh stores filled the same way ranks the same, on every backend.

What made hybrid hit@1 on PostgreSQL move between 0.750 and 0.833 from one run to the next:
PostgreSQL's text-search parser read ``CVE-2024-3094`` as ``cve``, ``-2024``, ``-3094`` (signed
numbers), so the query terms ``2024`` and ``3094`` matched nothing and every ``CVE-...`` memory
tied on ``cve`` alone; ties were then broken by the memories' ids, whose low part was random.
Now the keyword column is built from the text with punctuation made blank (the tokens FTS5 and
``fusion.tokens`` see), and ids made in one process count up, so "the smaller id" is "added
first" on every store. PostgreSQL scopes with fewer than ``exact_below`` memories are searched
exactly, not through the HNSW graph (whose shape depends on random levels).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.memory.conftest import MemoryFactory
from tests.memory.hybrid_set import MEMORIES, QUERIES
from tether.llm.embeddings import HashingEmbedder
from tether.memory import (
    DEFAULT_RANKING,
    KEYWORD_ONLY,
    InProcessMemory,
    MemoryBackend,
    MemoryScope,
    NewMemory,
    SqliteMemory,
    open_memory,
    validate,
)
from tether.testing import FakeClock

SCOPE = MemoryScope("det")


def test_ids_made_in_one_process_count_up() -> None:
    ids = [validate.new_memory_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 and int(i, 16) >= 0 for i in ids)


async def rankings(m: MemoryBackend) -> list[list[tuple[str, float]]]:
    added = await m.add_many([NewMemory(text) for _, text in MEMORIES], scope=SCOPE)
    key_of = {a.id: key for a, (key, _) in zip(added, MEMORIES, strict=True)}
    out = []
    for query, _, _ in QUERIES:
        hits = await m.search(query, scope=SCOPE, k=10, record_access=False)
        out.append([(key_of[h.memory.id], round(h.score, 12)) for h in hits])
    return out


@pytest.mark.parametrize("backend", ["inprocess", "sqlite", "postgres"])
async def test_fresh_stores_rank_the_same(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two fresh stores, same memories, same clock: identical rankings and scores for every
    query of the labelled set (many of them tie: near-identical sentences)."""
    results = []
    for n in range(2):
        clock = FakeClock()
        m: MemoryBackend
        if backend == "inprocess":
            m = InProcessMemory(embedder=HashingEmbedder(128), clock=clock)
        elif backend == "sqlite":
            m = SqliteMemory(str(tmp_path / f"{n}.db"), embedder=HashingEmbedder(128), clock=clock)
        else:  # a schema of its own for each (the fixture drops it afterwards)
            uri = request.getfixturevalue("pg_memory_uri") + str(n)
            m = open_memory(uri, embedder=HashingEmbedder(128), clock=clock)
        await m.setup()
        try:
            results.append(await rankings(m))
        finally:
            await m.close()
            if backend == "postgres":
                await drop_schema(uri)
    assert results[0] == results[1]


async def drop_schema(uri: str) -> None:
    import psycopg

    base, _, schema = uri.rpartition("schema=")
    async with await psycopg.AsyncConnection.connect(base.rstrip("?&"), autocommit=True) as c:
        await c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_equal_matches_rank_in_the_order_they_were_added(
    memory_factory: MemoryFactory,
) -> None:
    m = await memory_factory()
    added = await m.add_many([NewMemory("the printer jams again") for _ in range(6)], scope=SCOPE)
    for ranking in (DEFAULT_RANKING, KEYWORD_ONLY):
        hits = await m.search("printer jams", scope=SCOPE, k=6, ranking=ranking)
        assert [h.memory.id for h in hits] == [a.id for a in added]


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Security scan flagged CVE-2024-3094 in the base image", "3094"),
        ("Incident JIRA-4821: checkout returned HTTP 502", "4821"),
        ("Disk usage on host db-prod-07 crossed ninety percent", "07"),
        ("the call to ERR_CONN-42 failed; retry 3.14 later", "42 14"),
    ],
)
async def test_keywords_are_the_same_tokens_on_every_backend(
    memory_factory: MemoryFactory, text: str, query: str
) -> None:
    """A number after a hyphen is its own word on every backend (PostgreSQL's parser made
    ``-3094`` of it, which the keyword query ``3094`` did not match)."""
    m = await memory_factory()
    await m.add_many([NewMemory(text), NewMemory("something else entirely")], scope=SCOPE)
    hits = await m.search(query, scope=SCOPE, ranking=KEYWORD_ONLY)
    assert [h.memory.text for h in hits] == [text]


async def test_a_version_1_postgres_store_gets_the_new_keyword_column(
    pg_memory_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made before the keyword fix is rebuilt by ``setup()``: its old memories are
    found by the numbers in their codes afterwards."""
    from tether.memory import schema

    migrations = schema.migrations
    with monkeypatch.context() as patch:  # a tether from before: version 1 only
        patch.setattr(schema, "LATEST", 1)
        patch.setattr(schema, "migrations", lambda flavor, dims: migrations(flavor, dims)[:1])
        old = open_memory(pg_memory_uri, embedder=HashingEmbedder(128))
        await old.setup()
        await old.add("Security scan flagged CVE-2024-3094 in the base image", scope=SCOPE)
        assert await old.search("3094", scope=SCOPE, ranking=KEYWORD_ONLY) == []
        await old.close()
    m = open_memory(pg_memory_uri, embedder=HashingEmbedder(128))
    await m.setup()
    try:
        hits = await m.search("3094", scope=SCOPE, ranking=KEYWORD_ONLY)
        assert [h.memory.text for h in hits] == [
            "Security scan flagged CVE-2024-3094 in the base image"
        ]
        async with m.db.statement() as tx:  # type: ignore[attr-defined]
            rows = await tx.fetch("SELECT MAX(version) FROM tether_memory_schema")
        assert rows[0][0] == schema.LATEST
    finally:
        await m.close()
