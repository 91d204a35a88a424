"""MiniLM's fast paths: the direct encode of a few texts gives sentence-transformers' vectors;
the int8 variant is faster-made but different vectors, so it is another embedder by name."""

from __future__ import annotations

import numpy as np
import pytest

from tether.core.errors import ConfigurationError
from tether.llm import embeddings
from tether.llm.embeddings import MiniLMEmbedder
from tether.llm.minilm_encode import encode_direct

TEXTS = [
    "the nightly export to CSV failed again after the deploy",
    "Maria does not eat meat, eggs or dairy products",
    "ticket T-04821: the customer cannot log in to the dashboard from Lisbon",
]


async def test_direct_encode_gives_the_vectors_sentence_transformers_gives() -> None:
    float32 = MiniLMEmbedder(cache_size=0, engine="torch")
    await float32.load()
    model, _ = embeddings._load(float32.path)
    reference = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    one_by_one = np.stack([(await float32.embed([t]))[0] for t in TEXTS])  # direct, unpadded
    together = await float32.embed(TEXTS)  # direct, one padded batch
    alone = encode_direct(model.tokenizer, model[0].auto_model, TEXTS, max_length=256, batch_size=1)
    for got in (one_by_one, together, alone):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, reference, atol=1e-6)


async def test_int8_is_another_embedder_with_close_vectors() -> None:
    float32 = MiniLMEmbedder(cache_size=0)
    int8 = MiniLMEmbedder(cache_size=0, precision="int8")
    assert float32.name == "all-MiniLM-L6-v2"
    assert int8.name == "all-MiniLM-L6-v2+int8" and int8.dimensions == 384
    f, q = await float32.embed(TEXTS), await int8.embed(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    cosine = (f * q).sum(axis=1)
    assert (cosine > 0.9).all()  # close: the same model, quantised
    assert not np.allclose(f, q, atol=1e-3)  # but not the same vectors: never mix them
    # a text's vector does not depend on the texts encoded with it (activations are quantised
    # per call: int8 encodes one text at a time)
    many = [f"{t} (copy {i})" for i in range(4) for t in TEXTS]
    batch = await MiniLMEmbedder(cache_size=0, precision="int8", batch_size=5).embed(many)
    single = np.stack([(await int8.embed([t]))[0] for t in many])
    np.testing.assert_allclose(batch, single, atol=1e-6)
    # still a sentence embedder: a paraphrase is nearer than an unrelated sentence
    a, b, c = await int8.embed(
        ["How do I reset my password?", "I forgot my password, how can I change it?", "rain"]
    )
    assert float(a @ b) > float(a @ c) + 0.3


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown MiniLM precision 'fp16'"):
        MiniLMEmbedder(precision="fp16")
