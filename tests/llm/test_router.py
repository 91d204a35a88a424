"""The semantic router with the real all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from tether.core.errors import ConfigurationError, InvalidInputError
from tether.llm.embeddings import HashingEmbedder, MiniLMEmbedder, default_embedder
from tether.llm.router import RouteMatch, SemanticRouter

ROUTES = {
    "billing": [
        "I was charged twice for my subscription",
        "How do I get a refund?",
        "Update the credit card on my account",
        "Why is my invoice higher this month?",
    ],
    "tech_support": [
        "The app crashes when I open it",
        "I can't log in to my account",
        "The page shows an error 500",
        "Sync stopped working on my phone",
    ],
    "small_talk": [
        "Hi there, how are you?",
        "Tell me a joke",
        "Thanks, have a nice day!",
        "What's your name?",
    ],
}


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return default_embedder()


@pytest.fixture
def router(minilm: MiniLMEmbedder) -> SemanticRouter:
    # measured: the paraphrases below score 0.51-0.83, the unrelated texts 0.10-0.13
    return SemanticRouter(ROUTES, embedder=minilm, threshold=0.4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My card got billed two times this month", "billing"),
        ("Can I have my money back?", "billing"),
        ("I need to change my payment method", "billing"),
        ("The application keeps crashing on startup", "tech_support"),
        ("Login fails, I cannot sign in", "tech_support"),
        ("Hello! How's it going?", "small_talk"),
        ("Good morning! How are you doing today?", "small_talk"),
    ],
)
async def test_unseen_paraphrases_find_their_route(
    router: SemanticRouter, text: str, expected: str
) -> None:
    match = await router.route(text)
    assert match.route == expected, match
    assert match.nearest == expected
    assert not match.fallback
    assert match.matched_example in ROUTES[expected]
    assert 0.4 <= match.score <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "What is the boiling point of mercury in kelvin?",
        "Recommend a good hiking trail near Zurich",
        "Translate 'butterfly' into Japanese",
    ],
)
async def test_unrelated_text_falls_back(router: SemanticRouter, text: str) -> None:
    match = await router.route(text)
    assert match.fallback
    assert match.route == "default"
    assert match.score < 0.3
    assert match.nearest in ROUTES  # still says which route came closest
    assert match.matched_example in ROUTES[match.nearest]


async def test_score_is_the_best_example_cosine(
    router: SemanticRouter, minilm: MiniLMEmbedder
) -> None:
    text = "I was billed twice"
    match = await router.route(text)
    vectors = await minilm.embed([text, *ROUTES["billing"]])
    cosines = vectors[1:] @ vectors[0]
    assert match.route == "billing"
    assert match.score == pytest.approx(float(cosines.max()), abs=1e-5)
    assert match.matched_example == ROUTES["billing"][int(cosines.argmax())]


async def test_threshold_is_respected(minilm: MiniLMEmbedder) -> None:
    text = "Is there a way to get reimbursed?"
    score = (await SemanticRouter(ROUTES, embedder=minilm, threshold=-1).route(text)).score
    assert 0.2 < score < 0.95
    at = await SemanticRouter(ROUTES, embedder=minilm, threshold=score - 1e-4).route(text)
    above = await SemanticRouter(ROUTES, embedder=minilm, threshold=score + 1e-4).route(text)
    assert (at.route, at.fallback) == ("billing", False)
    assert (above.route, above.fallback, above.nearest) == ("default", True, "billing")
    assert above.score == pytest.approx(at.score)


async def test_scores_stay_in_cosine_range(router: SemanticRouter) -> None:
    for text in ["", "x", "refund", "!!!", "Tell me a joke about invoices", "ok " * 300]:
        match = await router.route(text)
        assert -1.0 <= match.score <= 1.0
        assert isinstance(match, RouteMatch)
    empty = await router.route("   ")
    assert (empty.route, empty.fallback, empty.score) == ("default", True, 0.0)


async def test_no_fallback_route_gives_none(minilm: MiniLMEmbedder) -> None:
    router = SemanticRouter(ROUTES, embedder=minilm, fallback=None)
    match = await router.route("What is the boiling point of mercury in kelvin?")
    assert match.route is None and match.fallback


class Counting:
    def __init__(self, inner: Any) -> None:
        self.inner, self.batches = inner, []
        self.name, self.dimensions = inner.name, inner.dimensions

    async def embed(self, texts: Sequence[str]) -> Any:
        self.batches.append(len(texts))
        return await self.inner.embed(texts)


async def test_examples_are_embedded_once_and_again_after_add_route(
    minilm: MiniLMEmbedder,
) -> None:
    counting = Counting(minilm)
    router = SemanticRouter(ROUTES, embedder=counting)
    assert counting.batches == []  # lazily
    await router.route("refund please")
    await router.route("the app crashed")
    assert counting.batches == [12, 1, 1]
    router.add_route("shipping", ["Where is my parcel?", "Track my delivery"])
    match = await router.route("Can you track my shipment?")  # 0.67 to "Track my delivery"
    assert match.route == "shipping"
    assert counting.batches == [12, 1, 1, 14, 1]
    assert list(router.routes) == ["billing", "tech_support", "small_talk", "shipping"]


async def test_concurrent_first_routes_embed_the_examples_once(minilm: MiniLMEmbedder) -> None:
    counting = Counting(minilm)
    router = SemanticRouter(ROUTES, embedder=counting, threshold=0.4)
    texts = ["refund please", "the app crashed", "hello there", "refund please"]
    matches = await asyncio.gather(*(router.route(t) for t in texts))
    assert [m.route for m in matches] == ["billing", "tech_support", "small_talk", "billing"]
    assert counting.batches == [12, 1, 1, 1, 1]


async def test_a_non_string_input_is_refused(router: SemanticRouter) -> None:
    with pytest.raises(InvalidInputError, match="input text"):
        await router.route(None)  # type: ignore[arg-type]


async def test_add_route_replace_keeps_order(minilm: MiniLMEmbedder) -> None:
    router = SemanticRouter({"a": ["weather forecast"], "b": ["pizza toppings"]}, embedder=minilm)
    with pytest.raises(ConfigurationError, match="already exists; pass replace=True"):
        router.add_route("a", ["anything"])
    router.add_route("a", ["stock market prices"], replace=True)
    assert router.routes == {"a": ("stock market prices",), "b": ("pizza toppings",)}
    assert (await router.route("share prices on the stock exchange")).route == "a"


async def test_ties_go_to_the_route_listed_first() -> None:
    same = ["reset password"]
    first = await SemanticRouter({"x": same, "y": same}, embedder=HashingEmbedder()).route(
        "reset password"
    )
    second = await SemanticRouter({"y": same, "x": same}, embedder=HashingEmbedder()).route(
        "reset password"
    )
    assert (first.route, second.route) == ("x", "y")
    assert first.score == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("routes", "kwargs", "message"),
    [
        ({}, {}, "at least one route"),
        ({"a": []}, {}, "needs at least one example"),
        ({"a": "refund please"}, {}, "not one string"),
        ({"a": ["ok", "  "]}, {}, "non-empty string"),
        ({"": ["ok"]}, {}, "route name must be a non-empty string"),
        ({"a": ["ok"]}, {"threshold": 1.5}, r"cosine similarity in \[-1, 1\]"),
        ({"a": ["ok"]}, {"threshold": "0.5"}, r"cosine similarity in \[-1, 1\], got '0.5'"),
        ({"a": ["ok"]}, {"threshold": True}, r"cosine similarity in \[-1, 1\], got True"),
    ],
)
def test_bad_configuration_is_refused(routes: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SemanticRouter(routes, embedder=HashingEmbedder(), **kwargs)


def test_default_embedder_is_minilm() -> None:
    router = SemanticRouter({"a": ["ok"]})
    assert isinstance(router.embedder, MiniLMEmbedder)
    assert router.embedder is default_embedder()
    assert np.isclose(router.threshold, 0.5) and router.fallback == "default"
