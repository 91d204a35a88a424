"""The semantic cache's records: its statistics, a lookup's findings, a stored entry, the
index of one scope, and how a stored entry is served as a hit (see ``tether.llm.cache``)."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.llm.cache_slots import Slots, extract_slots
from tether.llm.types import ModelRequest, ModelResponse, Timing, Usage
from tether.llm.vector_index import VectorIndex

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


@dataclass
class CacheStats:
    hits: int = 0
    """Answers served from the cache, including those shared by an identical call in flight."""
    misses: int = 0
    stores: int = 0
    refused: int = 0
    """Answers not stored (write tools, truncated...) and requests without a user message."""
    expired: int = 0
    evicted: int = 0

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


@dataclass
class CacheLookup:
    """What ``SemanticCache.lookup`` found: ``response`` is the hit (None on a miss); pass the
    lookup to ``store`` with the fresh answer after a miss."""

    request: ModelRequest
    scope: str | None
    question: str
    vector: Vectors | None = None
    response: ModelResponse | None = None
    slots: Slots | None = None


@dataclass
class Entry:
    key: str  # the scope and the question's exact slots: the entries a question may match
    question: str
    vector: Vectors
    response: ModelResponse
    stored_at: float
    writes: bool
    slots: Slots


@dataclass
class Scope:
    index: VectorIndex = field(default_factory=VectorIndex)
    questions: dict[str, int] = field(default_factory=dict)


async def slots_of(question: str) -> Slots:
    """``extract_slots``; in a worker thread for a long question (a few ms per 1,000 chars)."""
    if len(question) <= 1_000:
        return extract_slots(question)
    return await asyncio.to_thread(extract_slots, question)


def key_of(scope: str, slots: Slots) -> str:
    return f"{scope}\x1d{slots.key}"


def served(entry: Entry, similarity: float, age: float) -> ModelResponse:
    original = entry.response
    note = {
        "hit": True,
        "similarity": similarity,
        "age": age,
        "usage": original.usage.model_dump(mode="json"),
        "slots": entry.slots.describe(),
    }
    return original.model_copy(
        update={
            "usage": Usage(),
            "cost": 0.0,
            "timing": Timing(),
            "metadata": {**copy.deepcopy(original.metadata), "cache": note},
        },
        deep=True,
    )
