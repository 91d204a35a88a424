"""The values the memory plane stores and returns: scopes, memories, recall hits, facts.

All are frozen dataclasses; timestamps are float seconds since the epoch (``Clock.now()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tether.core.errors import InvalidInputError
from tether.core.finite import check_number


def is_unicode(value: str) -> bool:
    """Whether ``value`` is Unicode text: no lone surrogate (``"\\ud800"``, what decoding bytes
    with ``errors="surrogateescape"`` leaves), which no database can store as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_TEXT = 100_000
"""Characters a memory's text may hold (a memory is a note, not a document store)."""


@dataclass(frozen=True, slots=True)
class MemoryScope:
    """Who a memory belongs to. ``tenant`` is the isolation boundary and always matches exactly
    (``None`` is its own tenant: the single-tenant default, never "any tenant"). In a search or
    listing, the other fields are filters: ``None`` means any value; a value matches only
    memories stored with that value."""

    tenant: str | None
    agent: str | None = None
    run_id: str | None = None
    thread_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("tenant", "agent", "run_id", "thread_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value or len(value) > 256):
                raise InvalidInputError(
                    f"MemoryScope.{name} must be None or a non-empty string of at most 256 "
                    f"characters, got {value!r}"
                )
            if value is not None and not is_unicode(value):
                raise InvalidInputError(
                    f"MemoryScope.{name} {value!r} holds a lone surrogate (not Unicode text)"
                )

    def covers(self, stored: MemoryScope) -> bool:
        """Whether a memory stored under ``stored`` is visible to a query made with this scope."""
        return (
            stored.tenant == self.tenant
            and (self.agent is None or stored.agent == self.agent)
            and (self.run_id is None or stored.run_id == self.run_id)
            and (self.thread_id is None or stored.thread_id == self.thread_id)
        )


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a memory or fact came from. ``trusted=False`` (the default) marks content an
    injection guard must treat as outside input (a tool result, a user's words, a web page)."""

    source: str = "user"
    """What produced it: ``"user"``, ``"tool"``, ``"model"``, ``"consolidation"``, ``"system"``."""
    trusted: bool = False
    run_id: str | None = None
    step: int | None = None
    tool: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "trusted": self.trusted}
        for name in ("run_id", "step", "tool"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Provenance:
        if not data:
            return cls()
        step = data.get("step")
        return cls(
            source=str(data.get("source", "user")),
            trusted=bool(data.get("trusted", False)),
            run_id=data.get("run_id"),
            step=int(step) if step is not None else None,
            tool=data.get("tool"),
        )


@dataclass(frozen=True, slots=True)
class Memory:
    """One episodic memory: what happened, in words, with who it belongs to and how it mattered."""

    id: str
    text: str
    scope: MemoryScope
    metadata: dict[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    """0..1; multiplies the search score by ``0.5 + importance`` at full weight (0.5: neutral)."""
    created_at: float = 0.0
    last_accessed_at: float = 0.0
    access_count: int = 0
    provenance: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True, slots=True)
class Recalled:
    """A search hit: the memory, its final score (higher is better), and its rank (1-based) in
    each retriever's list, ``None`` where that retriever did not return it."""

    memory: Memory
    score: float
    vector_rank: int | None
    keyword_rank: int | None


@dataclass(frozen=True, slots=True)
class Ranking:
    """How ``search`` fuses and weighs. score = RRF * decay * importance factor, where
    RRF = sum of weight / (rrf_k + rank) over the vector and keyword lists,
    decay = floor + (1 - floor) * 0.5 ** (age / half_life) with age = now - created_at, and
    importance factor = 1 + importance_weight * (importance - 0.5) (0.5..1.5)."""

    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    rrf_k: float = 60.0
    half_life: float | None = 30 * 86_400.0
    """Seconds after which a memory's recency factor halves; None: no decay."""
    decay_floor: float = 0.1
    importance_weight: float = 1.0
    candidates: int = 50
    """How many hits each retriever contributes before fusion (at least ``k``)."""

    def __post_init__(self) -> None:
        for name in ("vector_weight", "keyword_weight"):  # NaN would rank every hit NaN
            check_number(f"Ranking.{name}", getattr(self, name), error=InvalidInputError)
        if self.vector_weight == 0 and self.keyword_weight == 0:
            raise InvalidInputError("Ranking needs vector_weight or keyword_weight above 0")
        # NaN compares false with everything: these checks would pass it, and every score
        # would be NaN (rrf_k) or every memory's decay NaN (half_life)
        check_number("Ranking.rrf_k", self.rrf_k, above=True, error=InvalidInputError)
        if self.half_life is not None:
            check_number("Ranking.half_life", self.half_life, above=True, error=InvalidInputError)
        if not 0 <= self.decay_floor <= 1:
            raise InvalidInputError(f"Ranking.decay_floor must be in 0..1, got {self.decay_floor}")
        if not 0 <= self.importance_weight <= 1:
            raise InvalidInputError(
                f"Ranking.importance_weight must be in 0..1, got {self.importance_weight}"
            )
        if (
            isinstance(self.candidates, bool)
            or not isinstance(self.candidates, int)
            or not 1 <= self.candidates <= 10_000
        ):
            raise InvalidInputError(
                f"Ranking.candidates must be in 1..10000, got {self.candidates}"
            )


VECTOR_ONLY = Ranking(keyword_weight=0.0)
KEYWORD_ONLY = Ranking(vector_weight=0.0)

Direction = Literal["out", "in", "both"]


@dataclass(frozen=True, slots=True)
class Fact:
    """One edge of the knowledge graph: ``subject --relation--> object``, true in the world
    from ``valid_from`` until ``valid_to`` (None: still true), recorded at ``recorded_at``.
    A superseded fact keeps its row (history) with ``valid_to`` set and ``superseded_by`` naming
    the fact that replaced it."""

    id: str
    subject: str
    relation: str
    object: str
    scope: MemoryScope
    valid_from: float
    valid_to: float | None
    recorded_at: float
    provenance: Provenance = field(default_factory=Provenance)
    superseded_by: str | None = None

    def valid_at(self, t: float) -> bool:
        return self.valid_from <= t and (self.valid_to is None or t < self.valid_to)


@dataclass(frozen=True, slots=True)
class Hop:
    """A node reached by ``KnowledgeGraph.hops``: the entity, how many edges away, and the facts
    of (one shortest) path from the start to it, in order."""

    node: str
    depth: int
    path: tuple[Fact, ...]
