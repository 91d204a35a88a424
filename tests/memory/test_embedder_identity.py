"""A memory store records which embedder made its vectors and refuses another one: vectors of
different models, or of MiniLM and its int8 variant, must never be compared with each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError
from tether.llm.embeddings import HashingEmbedder, MiniLMEmbedder
from tether.memory import MemoryBackend, MemoryScope, SqliteMemory, open_memory

SCOPE = MemoryScope("ident")


class RenamedHashing(HashingEmbedder):
    """The hashing embedder under another name: same dimensions, other vectors."""

    name = "hashing-v2"


def opener(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return str(tmp_path / "ident.db")
    return str(request.getfixturevalue("pg_memory_uri"))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_another_embedder_of_the_same_width_is_refused(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where = opener(backend, tmp_path, request)
    first = open_memory(where, embedder=HashingEmbedder(128))
    await first.setup()
    await first.add("the printer on floor three jams", scope=SCOPE)
    await first.close()
    other: MemoryBackend = open_memory(where, embedder=RenamedHashing(128))
    with pytest.raises(
        ConfigurationError, match="come from the embedder 'hashing', not 'hashing-v2'"
    ):
        await other.setup()
    await other.close()
    same = open_memory(where, embedder=HashingEmbedder(128))  # the one that filled it: fine
    await same.setup()
    try:
        hits = await same.search("printer jams", scope=SCOPE)
        assert [h.memory.text for h in hits] == ["the printer on floor three jams"]
    finally:
        await same.close()


async def test_minilm_and_its_int8_variant_do_not_mix(tmp_path: Path) -> None:
    path = str(tmp_path / "minilm.db")
    made = SqliteMemory(path, embedder=MiniLMEmbedder())
    await made.setup()
    await made.close()
    quantised = SqliteMemory(path, embedder=MiniLMEmbedder(precision="int8"))
    with pytest.raises(ConfigurationError, match=r"all-MiniLM-L6-v2\+int8"):
        await quantised.setup()
    await quantised.close()
