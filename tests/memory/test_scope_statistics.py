"""A search's statistics are its scope's: another tenant's writes change neither what a
tenant's search finds nor what it costs (max-df pruning counted the whole store before)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.memory.conftest import MemoryFactory
from tether.llm import HashingEmbedder
from tether.memory import KEYWORD_ONLY, InProcessEpisodic, MemoryScope, NewMemory, fusion

ACME, GLOBEX = MemoryScope("acme"), MemoryScope("globex")


async def test_another_tenants_writes_do_not_change_my_keyword_recall(
    memory_factory: MemoryFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Globex writing a word 100 times used to push it over 5 % of the store, and Acme's
    only memory holding it stopped being found by keyword (on every backend)."""
    monkeypatch.setattr(fusion, "PRUNE_FROM", 40)  # the 10,000 of a real store, scaled down
    m = await memory_factory()
    await m.add_many([NewMemory(f"acme note {i} about shipping") for i in range(40)], scope=ACME)
    vault = await m.add("our vault passphrase hint is zebracode", scope=ACME)
    await m.add_many([NewMemory(f"globex note {i} about billing") for i in range(40)], scope=GLOBEX)

    async def recall(query: str) -> list[tuple[str, float]]:
        hits = await m.search(query, scope=ACME, ranking=KEYWORD_ONLY, record_access=False)
        return [(h.memory.id, h.score) for h in hits]

    before = await recall("zebracode")
    assert [i for i, _ in before] == [vault.id]
    await m.add_many([NewMemory(f"globex item {i} zebracode") for i in range(100)], scope=GLOBEX)
    assert await recall("zebracode") == before
    # pruning still works, on the scope's own counts: 40 of acme's 41 memories say "shipping"
    assert await recall("shipping") == []
    assert await recall("shipping zebracode") == before
    # and globex's searches see globex's counts: "zebracode" is in 100 of its 140 memories
    hits = await m.search("zebracode", scope=GLOBEX, ranking=KEYWORD_ONLY, record_access=False)
    assert hits == []


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text ``fusion.tokens`` is asked to tokenise, from here on."""
    calls: list[str] = []
    real: Callable[[str], list[str]] = fusion.tokens

    def tokens(text: str) -> list[str]:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(fusion, "tokens", tokens)
    return calls


async def test_in_process_search_tokenises_the_query_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every search used to tokenise every memory of every tenant once per query term once
    the store held 10,000 (3.5 ms at 9,999 memories, 450 ms at 10,000); a memory's words are
    now counted once, when it is added, and a search reads its own tenant's only."""
    monkeypatch.setattr(fusion, "PRUNE_FROM", 100)
    m = InProcessEpisodic(embedder=HashingEmbedder(64))
    calls = counting(monkeypatch)
    await m.add_many(
        [NewMemory(f"globex note {i} about refunds") for i in range(300)], scope=GLOBEX
    )
    await m.add_many(
        [NewMemory(f"acme note {i} about a late refund") for i in range(120)], scope=ACME
    )
    assert len(calls) == 420  # once per memory, when added
    calls.clear()
    query = "what did the customer say about the late refund for the broken laptop order"
    hits = await m.search(query, scope=ACME, k=5, record_access=False)
    assert hits and all(h.memory.scope == ACME for h in hits)
    assert calls == [query]
    calls.clear()
    await m.search("refunds", scope=GLOBEX, k=5, ranking=KEYWORD_ONLY)
    assert calls == ["refunds"]
    # a forgotten memory's words go with it
    gone = (await m.list(ACME, limit=1))[0][0]
    assert await m.forget([gone.id], scope=ACME) == 1
    assert await m.search("0", scope=ACME, ranking=KEYWORD_ONLY) == []
    assert await m.count(ACME) == 119
