"""The SQLite memory store on a full disk. Its vector index is a cache of the table saved
beside it; before, a save that the disk could not take failed the call that happened to be
due to save it, a *search* included, with usearch's bare ``RuntimeError: Failed to serialize
into stream``, again on every later search; a search also failed on the write of its hits'
access counts; ``close()`` raised too and left the database open, and each try left its
temporary file behind. Now a failed save is one warning and unrecorded access counts
another: the search answers, close closes, nothing is left on the disk, and the next open
replays the changes the index lacks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.small_disk import fill
from tether.llm.embeddings import HashingEmbedder
from tether.memory import VECTOR_ONLY, MemoryScope, NewMemory, SqliteMemory

ACME = MemoryScope("acme")


async def opened(path: Path, **kw: object) -> SqliteMemory:
    m = SqliteMemory(str(path), embedder=HashingEmbedder(64), exact_below=0, **kw)  # type: ignore[arg-type]
    await m.setup()
    return m


async def test_a_full_disk_costs_the_index_save_and_nothing_else(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = small_disk / "memory.db"
    reader = await opened(db, save_every=5)  # due to save once it catches up 5 changes
    writer = await opened(db, save_every=10_000)
    added = await writer.add_many(
        [NewMemory(f"invoice {i} of order {1000 + i} was paid") for i in range(12)], scope=ACME
    )
    filler = fill(small_disk)  # no byte left for an index file
    with caplog.at_level(logging.WARNING, logger="tether.memory.ann_index"):
        for _ in range(3):  # the save is tried once, not on every search
            hits = await reader.search(added[3].text, scope=ACME, k=3, ranking=VECTOR_ONLY)
            assert hits[0].memory.id == added[3].id
    warned = [r for r in caplog.records if "was not saved" in r.getMessage()]
    assert len(warned) == 1 and "nothing is lost" in warned[0].getMessage()
    await reader.close()  # saving fails again: close still closes
    await writer.close()
    assert reader._thread._db is None and writer._thread._db is None
    assert not list(small_disk.glob("*.tmp")), "a failed save left its file behind"
    filler.unlink()  # room again: a new store replays what the index lacks
    again = await opened(db)
    hits = await again.search(added[11].text, scope=ACME, k=3, ranking=VECTOR_ONLY)
    assert hits[0].memory.id == added[11].id
    await again.close()
