"""The memory recall bench in a tiny size, so that it cannot rot: real SQLite store, clustered
vectors, recall against numpy's exact top 10 (the bench's own ground truth)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import memory_recall as mr  # noqa: E402  (bench/ is not a package)


async def test_sqlite_recall_bench_runs_and_measures(tmp_path: Path) -> None:
    data = mr.clustered_data(3000, 8)
    truth = mr.exact_top10(data)
    assert all(len(t) == 10 for t in truth)
    row = await mr.run_one("sqlite", str(tmp_path / "b.db"), data, truth, adds=0)
    assert row["memories"] == 3000 and row["insert_per_s"] > 0 and row["reopen_s"] >= 0
    assert row["vector_search"]["p95_ms"] >= row["vector_search"]["p50_ms"] > 0
    assert 0.0 <= row["recall_at_10"] <= 1.0
    assert row["recall_at_10"] >= 0.8  # well-separated clusters: the HNSW path finds them
    assert row["hybrid_search"]["p50_ms"] > 0


def test_exact_truth_is_the_brute_force_top10() -> None:
    data = mr.clustered_data(500, 3)
    truth = mr.exact_top10(data)
    for q, want in zip(data["qvectors"], truth, strict=True):
        sims = data["vectors"] @ q
        assert max(sims[i] for i in want) == sims.max()
        assert len(want) == 10
