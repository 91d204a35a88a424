"""Semantic drift: how close (cosine similarity of sentence embeddings) a run's output stays to
the user's goal, and each plan to the plan before it.

``DriftMonitor`` embeds with the llm plane's embedder (all-MiniLM-L6-v2, offline, by default;
any ``tether.llm.embeddings.Embedder`` can be passed, e.g. a fake in tests). A similarity below
``threshold`` (default 0.7) is drift.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from tether.core.errors import ConfigurationError
from tether.llm.embeddings import Embedder, default_embedder, embed_unit

DEFAULT_THRESHOLD = 0.7
GOAL_FIELDS = ("goal", "question", "query", "task", "prompt", "request", "input")
"""Fields of a run's input read as its goal when none is named."""
OUTPUT_FIELDS = ("answer", "output", "result", "response", "final", "summary")
"""Fields of a run's final state read as its output when none is named."""


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One comparison: ``similarity`` of two texts against the ``threshold``."""

    kind: str
    """``goal_output`` or ``plan``."""
    similarity: float
    threshold: float
    left: str
    right: str

    @property
    def drifted(self) -> bool:
        return self.similarity < self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


def as_text(value: Any) -> str:
    """A value as the text to embed: a string as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def pick(value: Any, names: Sequence[str]) -> Any:
    """The first of ``names`` present (and not empty) in a mapping; else the value itself."""
    if isinstance(value, Mapping):
        for name in names:
            if value.get(name) not in (None, "", [], {}):
                return value[name]
    return value


class DriftMonitor:
    def __init__(
        self, embedder: Embedder | None = None, *, threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigurationError(f"drift threshold must be in (0, 1], got {threshold}")
        self._embedder = embedder
        self.threshold = threshold

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    async def similarities(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine similarity of each pair, embedding every distinct text once."""
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        if not texts:
            return []
        vectors = await embed_unit(self.embedder, texts)
        row = {t: i for i, t in enumerate(texts)}
        out = []
        for a, b in pairs:
            if a == b:
                out.append(1.0)
                continue
            sim = float(vectors[row[a]] @ vectors[row[b]])
            out.append(max(-1.0, min(1.0, sim)))
        return out

    async def check(self, goal: Any, output: Any) -> DriftCheck:
        """How close ``output`` stays to ``goal`` (texts, or values shown as JSON)."""
        left, right = as_text(goal), as_text(output)
        (sim,) = await self.similarities([(left, right)])
        return DriftCheck("goal_output", sim, self.threshold, left, right)

    async def check_plans(self, plans: Sequence[Any]) -> list[DriftCheck]:
        """Each plan against the one before it (``len(plans) - 1`` checks)."""
        texts = [as_text(p) for p in plans]
        pairs = list(itertools.pairwise(texts))
        sims = await self.similarities(pairs)
        return [
            DriftCheck("plan", s, self.threshold, a, b)
            for (a, b), s in zip(pairs, sims, strict=True)
        ]
