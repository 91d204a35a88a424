"""The cache's vector index: in-place adds and removes give the same answers as brute force."""

from __future__ import annotations

import numpy as np
import pytest

from tether.core.errors import ConfigurationError
from tether.llm.vector_index import VectorIndex


def unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute(live: dict[int, np.ndarray], query: np.ndarray, threshold: float) -> list[int]:
    scored = sorted(((float(v @ query), k) for k, v in live.items()), key=lambda s: -s[0])
    return [k for score, k in scored if score >= threshold]


def test_adds_and_removes_match_brute_force_through_growth_and_shrinking() -> None:
    rng = np.random.default_rng(7)
    index, live = VectorIndex(capacity=2), dict[int, np.ndarray]()
    vectors = unit(rng, 300)
    for step in range(300):
        index.add(step, vectors[step])
        live[step] = vectors[step]
        if step % 3 == 2:  # remove an older one: the last row moves into its place
            gone = int(rng.choice(list(live)))
            index.remove(gone)
            del live[gone]
        if step % 25 == 0:
            query = unit(rng, 1)[0]
            assert [k for k, _ in index.search(query, -1.0)] == brute(live, query, -1.0)
    assert len(index) == len(live) == 200
    query = vectors[299]
    found = index.search(query, 0.3)
    assert [k for k, _ in found] == brute(live, query, 0.3)
    assert found[0] == (299, pytest.approx(1.0))
    assert all((k in index) == (k in live) for k in range(300))


def test_empty_and_emptied_indexes_find_nothing() -> None:
    index = VectorIndex()
    query = np.ones(4, dtype=np.float32) / 2
    assert index.search(query, -1.0) == []
    index.add(1, query)
    assert index.search(query, 0.99) == [(1, pytest.approx(1.0))]
    index.remove(1)
    assert index.search(query, -1.0) == [] and len(index) == 0


def test_bad_keys_and_lengths_are_refused() -> None:
    index = VectorIndex()
    index.add(1, np.ones(4, dtype=np.float32))
    with pytest.raises(KeyError, match="already"):
        index.add(1, np.ones(4, dtype=np.float32))
    with pytest.raises(ConfigurationError, match="one embedder per index"):
        index.add(2, np.ones(8, dtype=np.float32))
    with pytest.raises(KeyError):
        index.remove(5)
