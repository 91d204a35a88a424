"""The semantic cache never serves an answer to a question that names another order, amount,
date, time, negation, name or opposite action, however close the embeddings are; real
paraphrases still hit. Real all-MiniLM-L6-v2 embeddings, default threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tether.llm.cache import CachedModel, SemanticCache
from tether.llm.embeddings import MiniLMEmbedder, default_embedder, embed_unit
from tether.llm.fakes import FunctionModel
from tether.llm.request import build_request
from tether.llm.types import ModelRequest, ModelResponse
from tether.testing import FakeClock

PAIRS = Path(__file__).resolve().parents[2] / "bench" / "data" / "cache_pairs.jsonl"

# What the issue saw served (cosine 0.954, 0.960, 0.967 at the old threshold of 0.92).
ISSUE_NEAR_MISSES = [
    ("What is the refund status of order 1234?", "What is the refund status of order 1235?"),
    ("What's on my schedule today?", "What's on my schedule tomorrow?"),
    ("Cancel my subscription", "Don't cancel my subscription"),
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return default_embedder()


def answering() -> FunctionModel:
    def reply(request: ModelRequest) -> ModelResponse:
        return ModelResponse(text=f"answer {len(model.requests)}: {request.last_user_text}")

    model = FunctionModel(reply, name="support-bot")
    return model


@pytest.mark.parametrize(("cached", "asked"), ISSUE_NEAR_MISSES)
async def test_the_issues_near_misses_are_asked_again(
    minilm: MiniLMEmbedder, cached: str, asked: str
) -> None:
    vectors = await embed_unit(minilm, [cached, asked])
    assert float(vectors[0] @ vectors[1]) > 0.92  # as close as the issue saw them
    inner = answering()
    model = CachedModel(inner, SemanticCache(minilm, clock=FakeClock()))
    await model.chat(cached)
    other = await model.chat(asked)
    assert other.text == f"answer 2: {asked}" and inner.calls == 2
    assert other.metadata["cache"] == {"hit": False, "stored": True}
    again = await model.chat(cached)  # and each question keeps its own answer
    assert again.text == f"answer 1: {cached}" and again.metadata["cache"]["hit"]


async def test_a_paraphrase_with_the_same_slots_hits(minilm: MiniLMEmbedder) -> None:
    inner = answering()
    model = CachedModel(inner, SemanticCache(minilm, clock=FakeClock()))
    first = await model.chat("What is the refund status of order 1234?")
    hit = await model.chat("Has order #1234 been refunded yet?")
    assert inner.calls == 1 and hit.text == first.text
    note = hit.metadata["cache"]
    assert note["hit"] and 0.72 <= note["similarity"] < 0.92  # a miss at the old threshold
    assert note["slots"] == ["number:1234", "polarity:money=refund"]


async def test_opposite_actions_miss_and_synonyms_hit(minilm: MiniLMEmbedder) -> None:
    inner = answering()
    model = CachedModel(inner, SemanticCache(minilm, clock=FakeClock()))
    await model.chat("How do I increase my storage quota?")
    lower = await model.chat("How do I decrease my storage quota?")
    assert lower.text == "answer 2: How do I decrease my storage quota?"
    raise_ = await model.chat("How can I raise my storage quota?")
    assert raise_.text == "answer 1: How do I increase my storage quota?"
    assert inner.calls == 2


async def test_near_misses_with_other_slots_do_not_shadow_each_other(
    minilm: MiniLMEmbedder,
) -> None:
    inner = answering()
    cache = SemanticCache(minilm, clock=FakeClock())
    model = CachedModel(inner, cache)
    for order in (1234, 1235, 1236):
        await model.chat(f"What is the refund status of order {order}?")
    for n, order in enumerate((1234, 1235, 1236), start=1):
        hit = await model.chat(f"Has order #{order} been refunded yet?")
        assert hit.text == f"answer {n}: What is the refund status of order {order}?"
    assert inner.calls == 3 and len(cache) == 3


async def test_a_long_question_is_read_to_its_end(minilm: MiniLMEmbedder) -> None:
    """MiniLM reads 256 word pieces: past them two questions embed alike (cosine 1.0), and only
    the slots, read over the whole text (in a worker thread when it is long), tell them apart."""
    context = "I pasted our whole support thread below so you have the context. " * 40
    first, other = (f"{context}What is the refund status of order {n}?" for n in (1234, 1235))
    assert len(first) > 1_000
    vectors = await embed_unit(minilm, [first, other])
    assert float(vectors[0] @ vectors[1]) > 0.999
    inner = answering()
    model = CachedModel(inner, SemanticCache(minilm, clock=FakeClock()))
    await model.chat(first)
    assert (await model.chat(other)).metadata["cache"]["hit"] is False
    assert (await model.chat(first)).metadata["cache"]["hit"] is True
    assert inner.calls == 2


def load_pairs() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]


def test_the_labelled_set_is_big_varied_and_split() -> None:
    pairs = load_pairs()
    near = [p for p in pairs if p["label"] == "near_miss"]
    para = [p for p in pairs if p["label"] == "paraphrase"]
    assert len(pairs) >= 200 and len(near) >= 100 and len(para) >= 100
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert {p["split"] for p in pairs} == {"tune", "test", "blind"}
    kinds = {p["kind"] for p in near}
    for kind in ("identifier", "number", "amount", "date", "time", "relative", "negation"):
        assert kind in kinds
    assert {"polarity", "entity", "intent"} <= kinds
    assert all(p["a"] != p["b"] for p in pairs)


async def test_no_near_miss_of_the_labelled_set_is_served(minilm: MiniLMEmbedder) -> None:
    """Every pair through its own cache: store the answer to ``a``, ask ``b``. A near-miss that
    differs in a slot must never hit (a correctness property, at any threshold); paraphrases hit
    at least at the rate bench/cache_bench.py measured (80.8 %) less a margin."""
    pairs = load_pairs()
    await embed_unit(minilm, [t for p in pairs for t in (p["a"], p["b"])])  # one batch
    served: dict[str, list[str]] = {"slot": [], "intent": [], "paraphrase": []}
    for p in pairs:
        cache = SemanticCache(minilm, ttl=None)
        first = await cache.lookup("m", build_request(p["a"]))
        assert await cache.store(first, ModelResponse(text="the answer to a")) is None
        if (await cache.lookup("m", build_request(p["b"]))).response is not None:
            group = "paraphrase" if p["label"] == "paraphrase" else "slot"
            served["intent" if p["kind"] == "intent" else group].append(p["b"])
    assert served["slot"] == []
    assert len(served["intent"]) <= 5  # same slots, other intent: the threshold alone (3 now)
    paraphrases = sum(p["label"] == "paraphrase" for p in pairs)
    assert len(served["paraphrase"]) / paraphrases >= 0.75
