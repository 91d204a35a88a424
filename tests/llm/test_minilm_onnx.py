"""MiniLM on ONNX Runtime: the default engine for a few texts when onnxruntime is installed. It
is the same embedder as torch's (same name, the same vectors within 1e-6, padded batches
included), leaves the shared torch model as it was, and is safe to call from many threads."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tether.core.errors import ConfigurationError
from tether.llm import embeddings, minilm_onnx
from tether.llm.embeddings import MiniLMEmbedder
from tether.llm.minilm_encode import encode_direct

TEXTS = [
    "the nightly export to CSV failed again after the deploy",
    "Maria does not eat meat, eggs or dairy products",
    "ticket T-04821: the customer cannot log in to the dashboard from Lisbon",
    "ok",
]


def reference(texts: list[str]) -> np.ndarray:
    model, _ = embeddings._load(MiniLMEmbedder().path)
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)  # type: ignore[no-any-return]


async def test_onnx_is_the_default_engine_and_gives_torch_vectors() -> None:
    onnx = MiniLMEmbedder(cache_size=0)
    torch_engine = MiniLMEmbedder(cache_size=0, engine="torch")
    assert onnx.engine == "onnx" and torch_engine.engine == "torch"
    assert onnx.name == torch_engine.name == "all-MiniLM-L6-v2"  # one embedder, two engines
    await onnx.load()
    want = reference(TEXTS)
    one_by_one = np.stack([(await onnx.embed([t]))[0] for t in TEXTS])  # unpadded
    together = await onnx.embed(TEXTS)  # one batch padded to its longest text
    small_batches = await MiniLMEmbedder(cache_size=0, batch_size=3).embed(TEXTS)
    for got in (one_by_one, together, small_batches, await torch_engine.embed(TEXTS)):
        assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
        np.testing.assert_allclose(got, want, atol=1e-6)


async def test_exporting_leaves_the_shared_torch_model_in_eval_mode() -> None:
    model, _ = embeddings._load(MiniLMEmbedder().path)
    bert = model[0].auto_model
    graph = minilm_onnx.export(model.tokenizer, bert)
    assert len(graph) > 1_000_000 and not bert.training  # dropout stays off for torch
    first = encode_direct(model.tokenizer, bert, TEXTS, max_length=256, batch_size=8)
    again = encode_direct(model.tokenizer, bert, TEXTS, max_length=256, batch_size=8)
    np.testing.assert_array_equal(first, again)  # deterministic: no dropout
    np.testing.assert_allclose(first, reference(TEXTS), atol=1e-6)


async def test_encodes_from_many_threads_at_once_each_get_their_own_vectors() -> None:
    onnx = MiniLMEmbedder(cache_size=0)
    await onnx.load()
    texts = [f"order {i} was refunded twice by the billing job" for i in range(24)]
    want = reference(texts)
    encoder = embeddings._load_onnx(onnx.path)
    assert encoder is not None
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda t: encoder.encode([t], max_length=256, batch_size=8)[0], texts))
    np.testing.assert_allclose(np.stack(got), want, atol=1e-6)
    # and through the async API, concurrently
    rows = await asyncio.gather(*(onnx.embed([t]) for t in texts))
    np.testing.assert_allclose(np.concatenate(rows), want, atol=1e-6)


def test_engine_choices_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="unknown MiniLM engine 'tensorrt'"):
        MiniLMEmbedder(engine="tensorrt")
    with pytest.raises(ConfigurationError, match="runs on torch only"):
        MiniLMEmbedder(engine="onnx", precision="int8")
    assert MiniLMEmbedder(precision="int8").engine == "torch"  # auto: int8 is torch's


def test_without_onnxruntime_auto_falls_back_to_torch_and_onnx_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(minilm_onnx, "available", lambda: False)
    assert MiniLMEmbedder().engine == "torch"
    with pytest.raises(ConfigurationError, match="onnxruntime"):
        MiniLMEmbedder(engine="onnx")


async def test_when_the_export_fails_auto_encodes_on_torch_and_onnx_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(tokenizer: object, bert: object) -> bytes:
        raise RuntimeError("no TorchScript exporter in this torch")

    monkeypatch.setattr(minilm_onnx, "export", broken)
    monkeypatch.setattr(embeddings, "_onnx", {})  # as in a fresh process
    monkeypatch.setattr(embeddings, "_onnx_failed", {})
    auto = MiniLMEmbedder(cache_size=0)
    assert auto.engine == "onnx"
    with caplog.at_level(logging.WARNING, logger="tether.llm.embeddings"):
        got = await auto.embed(TEXTS)
        await auto.embed(TEXTS[:1])
    np.testing.assert_allclose(got, reference(TEXTS), atol=1e-6)
    assert auto.engine == "torch"
    warned = [r for r in caplog.records if "ONNX Runtime is unavailable" in r.getMessage()]
    assert len(warned) == 1 and "no TorchScript exporter" in warned[0].getMessage()
    with pytest.raises(ConfigurationError, match="no TorchScript exporter"):
        await MiniLMEmbedder(cache_size=0, engine="onnx").embed(["a new text"])
