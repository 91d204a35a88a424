"""Route an input to a named route (an agent, a sub-graph, a prompt) by meaning.

Each route is described by a few example utterances. An input goes to the route holding the
example most similar to it (cosine similarity of embeddings, all-MiniLM-L6-v2 by default), if
that similarity reaches ``threshold``; otherwise it goes to the ``fallback`` route::

    router = SemanticRouter(
        {
            "billing": ["I want a refund", "why was I charged twice", "update my credit card"],
            "tech_support": ["the app crashes on start", "I can't log in"],
        },
        threshold=0.5,
        fallback="general",
    )
    match = await router.route("my card got billed two times")
    match.route, match.score, match.matched_example   # "billing", 0.7..., "why was I charged..."

A route scores the best of its examples, not their centroid: a route's examples are often
different ways in (a refund, a card update), and their mean can sit far from all of them.
Exact ties go to the route listed first. Examples are embedded once, on the first ``route``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.finite import check_similarity
from tether.llm.embeddings import Embedder, default_embedder, embed_unit, numpy

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors

    _Index = tuple[list[str], list[str], Vectors]


@dataclass(frozen=True)
class RouteMatch:
    """Where an input went. ``fallback`` is True when no route reached the threshold; then
    ``route`` is the router's fallback (None when it has none) and ``nearest``,
    ``score`` and ``matched_example`` still tell which route came closest, and how close."""

    route: str | None
    score: float
    """Cosine similarity (-1..1) between the input and ``matched_example``."""
    matched_example: str
    fallback: bool
    nearest: str
    """The best-scoring route, whether or not it reached the threshold."""


class SemanticRouter:
    def __init__(
        self,
        routes: Mapping[str, Sequence[str]],
        *,
        embedder: Embedder | None = None,
        threshold: float = 0.5,
        fallback: str | None = "default",
    ) -> None:
        threshold = check_similarity("threshold", threshold, low=-1.0, low_open=False)
        if not routes:
            raise ConfigurationError("a SemanticRouter needs at least one route with examples")
        self.embedder = embedder if embedder is not None else default_embedder()
        self.threshold = threshold
        self.fallback = fallback
        self._routes: dict[str, tuple[str, ...]] = {}
        self._index: _Index | None = None
        self._indexing = asyncio.Lock()  # concurrent first routes embed the examples once
        self._version = 0
        for name, examples in routes.items():
            self.add_route(name, examples)

    @property
    def routes(self) -> dict[str, tuple[str, ...]]:
        """Route name → its examples, in routing order."""
        return dict(self._routes)

    def add_route(self, name: str, examples: Sequence[str], *, replace: bool = False) -> None:
        """Add a route after the existing ones (or, with ``replace=True``, give an existing
        route new examples, keeping its place)."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"a route name must be a non-empty string, got {name!r}")
        if name in self._routes and not replace:
            raise ConfigurationError(
                f"route {name!r} already exists; pass replace=True to give it new examples"
            )
        if isinstance(examples, str):
            raise ConfigurationError(
                f"route {name!r}: examples must be a list of utterances, not one string "
                f"(write [{examples!r}])"
            )
        cleaned = tuple(examples)
        if not cleaned:
            raise ConfigurationError(f"route {name!r} needs at least one example utterance")
        for example in cleaned:
            if not isinstance(example, str) or not example.strip():
                raise ConfigurationError(
                    f"route {name!r}: every example must be a non-empty string, got {example!r}"
                )
        self._routes[name] = cleaned
        self._index = None
        self._version += 1

    async def route(self, text: str) -> RouteMatch:
        """The route for ``text`` (see RouteMatch). Empty text goes to the fallback, score 0."""
        if not isinstance(text, str):
            raise InvalidInputError(
                f"route() takes the input text (a str), got {type(text).__name__}"
            )
        if not text.strip():
            return RouteMatch(self.fallback, 0.0, "", True, "")
        owners, examples, matrix = await self._example_index()
        query = (await embed_unit(self.embedder, [text]))[0]
        scores = matrix @ query
        best = int(numpy().argmax(scores))  # the first of equal maxima: earlier routes win ties
        score = max(-1.0, min(1.0, float(scores[best])))
        owner, example = owners[best], examples[best]
        if score >= self.threshold:
            return RouteMatch(owner, score, example, False, owner)
        return RouteMatch(self.fallback, score, example, True, owner)

    async def _example_index(self) -> _Index:
        """(route of each example, examples, their unit vectors), embedded once."""
        if self._index is not None:
            return self._index
        async with self._indexing:
            if self._index is not None:  # built while this call waited
                return self._index
            version = self._version
            owners = [name for name, examples in self._routes.items() for _ in examples]
            examples = [e for examples in self._routes.values() for e in examples]
            index = (owners, examples, await embed_unit(self.embedder, examples))
            if version == self._version:
                self._index = index  # unless add_route changed the routes meanwhile
            return index
