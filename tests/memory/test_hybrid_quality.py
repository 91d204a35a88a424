"""Hybrid search beats vector-only and keyword-only on a labelled set (``hybrid_set``), with the
real all-MiniLM-L6-v2 embedder, on every backend (in-process, SQLite, PostgreSQL).

Prints hit@1 and MRR@10 per mode and per query kind (run with -s to see them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.memory.hybrid_set import MEMORIES, QUERIES
from tether.memory import (
    DEFAULT_RANKING,
    KEYWORD_ONLY,
    VECTOR_ONLY,
    InProcessMemory,
    MemoryBackend,
    MemoryScope,
    NewMemory,
    Ranking,
    SqliteMemory,
    open_memory,
)

pytest.importorskip("sentence_transformers", reason="needs tether[embeddings]")

SCOPE = MemoryScope("eval")
MODES: dict[str, Ranking] = {
    "hybrid": DEFAULT_RANKING,
    "vector": VECTOR_ONLY,
    "keyword": KEYWORD_ONLY,
}


async def score(m: MemoryBackend) -> dict[str, dict[str, float]]:
    added = await m.add_many([NewMemory(text) for _, text in MEMORIES], scope=SCOPE)
    key_of = {a.id: key for a, (key, _) in zip(added, MEMORIES, strict=True)}
    out: dict[str, dict[str, float]] = {}
    for mode, ranking in MODES.items():
        stats = {"hit@1": 0.0, "mrr": 0.0, "exact": 0.0, "paraphrase": 0.0}
        for query, want, kind in QUERIES:
            hits = await m.search(query, scope=SCOPE, k=10, ranking=ranking, record_access=False)
            keys = [key_of[h.memory.id] for h in hits]
            rr = 1.0 / (keys.index(want) + 1) if want in keys else 0.0
            stats["mrr"] += rr / len(QUERIES)
            stats["hit@1"] += (rr == 1.0) / len(QUERIES)
            stats[kind] += rr / sum(1 for q in QUERIES if q[2] == kind)
        out[mode] = stats
    return out


@pytest.mark.parametrize("backend", ["inprocess", "sqlite", "postgres"])
async def test_hybrid_beats_each_retriever_alone(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tether.llm.embeddings import default_embedder

    embedder = default_embedder()
    m: MemoryBackend
    if backend == "inprocess":
        m = InProcessMemory(embedder=embedder)
    elif backend == "sqlite":
        m = SqliteMemory(str(tmp_path / "q.db"), embedder=embedder)
    else:
        m = open_memory(request.getfixturevalue("pg_memory_uri"), embedder=embedder)
    await m.setup()
    try:
        result = await score(m)
    finally:
        await m.close()
    print(f"\n{backend}: mode     hit@1   MRR@10  MRR(exact ids)  MRR(paraphrase)")
    for mode, s in result.items():
        print(
            f"{backend}: {mode:8} {s['hit@1']:.3f}   {s['mrr']:.3f}   {s['exact']:.3f}"
            f"           {s['paraphrase']:.3f}"
        )
    hybrid, vector, keyword = result["hybrid"], result["vector"], result["keyword"]
    assert hybrid["mrr"] > vector["mrr"] and hybrid["mrr"] > keyword["mrr"]
    # PostgreSQL's hybrid hit@1 used to move between 0.750 (= vector) and 0.833 from run to
    # run: its keyword column read "CVE-2024-3094" as cve, -2024, -3094 and ties went to random
    # ids (test_deterministic_ranking); now it is the same every run (0.861 here)
    assert hybrid["hit@1"] > vector["hit@1"] and hybrid["hit@1"] > keyword["hit@1"]
    # each retriever alone has its blind spot, which the set is built to show
    assert keyword["exact"] > vector["exact"]
    assert vector["paraphrase"] > keyword["paraphrase"]
