"""Keyword search matches a word however its accents are written, the same on every backend:
composed (NFC) or decomposed (NFD, as macOS hands file names over), with or without the accents
of Latin letters, and a capital with a dot (``İstanbul``) as its plain letters. Before,
PostgreSQL matched only the exact form stored (``ecole`` missed ``école``; a decomposed text
matched none of its accented words) and SQLite split ``İstanbul`` in a query into ``i`` and
``stanbul``, finding nothing."""

from __future__ import annotations

import unicodedata

import pytest

from tests.memory.conftest import MemoryFactory
from tether.llm.embeddings import HashingEmbedder
from tether.memory import KEYWORD_ONLY, MemoryScope, open_memory

ACME = MemoryScope("acme")
TEXT = "Lunch at the café near the École in İstanbul with a naïve Ἀθῆναι guide"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


QUERIES = ["cafe", "café", nfd("café"), "ecole", "ÉCOLE", "istanbul", "İstanbul", "naive"]
QUERIES += [nfd("naïve")]


async def test_accents_and_normal_forms_match_on_every_backend(
    memory_factory: MemoryFactory,
) -> None:
    m = await memory_factory()
    composed = await m.add(unicodedata.normalize("NFC", TEXT), scope=ACME)
    decomposed = await m.add(nfd(TEXT), scope=ACME)
    for query in QUERIES:
        hits = await m.search(query, scope=ACME, ranking=KEYWORD_ONLY, record_access=False)
        assert {h.memory.id for h in hits} == {composed.id, decomposed.id}, query
    # a Greek word keeps its marks (FTS5 and the fold leave other scripts' accents alone)
    hits = await m.search("ἀθῆναι", scope=ACME, ranking=KEYWORD_ONLY, record_access=False)
    assert composed.id in {h.memory.id for h in hits}
    assert await m.search("αθηναι", scope=ACME, ranking=KEYWORD_ONLY) == []


async def test_a_version_2_postgres_store_gets_the_folded_keyword_column(
    pg_memory_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``setup()`` rebuilds the keyword column of a store made before: its old memories are
    found without their accents afterwards."""
    from tether.memory import schema

    migrations = schema.migrations
    with monkeypatch.context() as patch:  # a tether from before: versions 1 and 2
        patch.setattr(schema, "LATEST", 2)
        patch.setattr(schema, "migrations", lambda flavor, dims: migrations(flavor, dims)[:2])
        old = open_memory(pg_memory_uri, embedder=HashingEmbedder(128))
        await old.setup()
        await old.add("Lunch at the café", scope=ACME)
        assert await old.search("cafe", scope=ACME, ranking=KEYWORD_ONLY) == []
        await old.close()
    m = open_memory(pg_memory_uri, embedder=HashingEmbedder(128))
    await m.setup()
    try:
        hits = await m.search("cafe", scope=ACME, ranking=KEYWORD_ONLY)
        assert [h.memory.text for h in hits] == ["Lunch at the café"]
    finally:
        await m.close()
