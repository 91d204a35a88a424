"""MiniLM's encodes of a few texts run on one torch thread (a query, a memory being added: a
parallel region per layer costs more than it saves there, far more on a busy machine), bigger
batches on torch's own count; the count is restored and the vectors are the same either way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tether.core.errors import ConfigurationError
from tether.llm.embeddings import MiniLMEmbedder, default_embedder, torch_threads


def test_torch_threads_sets_and_restores_the_count() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


async def test_few_and_many_texts_give_the_same_vectors() -> None:
    texts = [f"ticket T-{i:03d}: the export to CSV fails for user {i}" for i in range(12)]
    shared = default_embedder()
    few = MiniLMEmbedder(cache_size=0)  # one thread for up to 8 texts
    assert few.few_texts == 8
    never = MiniLMEmbedder(cache_size=0, few_texts=0)  # torch's count for every encode
    before = torch.get_num_threads()
    one_by_one = np.stack([(await few.embed([t]))[0] for t in texts])
    assert torch.get_num_threads() == before
    batch = await never.embed(texts)
    assert batch.shape == one_by_one.shape == (12, shared.dimensions)
    np.testing.assert_allclose(one_by_one, batch, atol=1e-5)


def test_negative_few_texts_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="few_texts must be 0"):
        MiniLMEmbedder(few_texts=-1)
