"""What consolidation ("dreaming") does to one tenant's memories, decided without I/O.

Every memory gets a score, recency x frequency x relevance:

- recency = 0.5 ** (age / half_life), age since it was last recalled (or created);
- frequency = (1 + accesses) / (3 + accesses): 1/3 never recalled, 1/2 once, ~0.85 ten times;
- relevance = the best cosine similarity of its text to the goals (clipped at 0), 1 without
  goals.

Memories younger than ``min_age`` or scoring at least ``keep_score`` are "hot" and left alone.
The cold ones are clustered by embedding similarity (greedy, oldest first, against each
cluster's centroid, at least ``similarity``); a cluster of ``min_cluster`` or more is merged
into one memory (a model call writes it) and its members are removed. A cold memory in a smaller
cluster is removed only when its score is under ``prune_below`` (off by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.core.errors import InvalidInputError
from tether.memory.types import Memory

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


@dataclass(frozen=True, slots=True)
class DreamSettings:
    min_age: float = 7 * 86_400.0
    """Seconds a memory must have existed before it may be consolidated."""
    half_life: float = 30 * 86_400.0
    keep_score: float = 0.25
    similarity: float = 0.75
    min_cluster: int = 2
    max_cluster: int = 20
    prune_below: float | None = None
    max_memories: int = 20_000
    """Memories one dream looks at (the oldest first); the next dream sees the rest."""

    def __post_init__(self) -> None:
        checks = [
            ("min_age", self.min_age >= 0),
            ("half_life", self.half_life > 0),
            ("keep_score", 0 < self.keep_score <= 1),
            ("similarity", 0 < self.similarity <= 1),
            ("min_cluster", 2 <= self.min_cluster <= self.max_cluster),
            ("max_cluster", self.max_cluster <= 200),
            ("prune_below", self.prune_below is None or 0 < self.prune_below <= self.keep_score),
            ("max_memories", 1 <= self.max_memories <= 1_000_000),
        ]
        for name, ok in checks:
            if not ok:
                raise InvalidInputError(
                    f"DreamSettings.{name}={getattr(self, name)!r} is out of range: min_age >= 0, "
                    "half_life > 0, 0 < keep_score <= 1, 0 < similarity <= 1, "
                    "2 <= min_cluster <= max_cluster <= 200, 0 < prune_below <= keep_score, "
                    "1 <= max_memories <= 1e6"
                )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DreamSettings:
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInputError(
                f"unknown dream settings {sorted(unknown)}; "
                f"known: {sorted(cls.__dataclass_fields__)}"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInputError(f"bad dream settings: {exc}") from None


@dataclass(frozen=True, slots=True)
class Scored:
    memory: Memory
    score: float
    recency: float
    frequency: float
    relevance: float


@dataclass(frozen=True, slots=True)
class DreamPlan:
    merges: list[list[Scored]]
    """Clusters to merge, each oldest first."""
    prunes: list[Scored]
    """Cold memories to remove alone."""
    hot: int
    """Memories left alone (too young or scoring at least keep_score)."""
    looked_at: int


def score(
    m: Memory, vector: Vectors, goals: Vectors | None, now: float, s: DreamSettings
) -> Scored:
    age = max(0.0, now - (m.last_accessed_at or m.created_at))
    recency = 0.5 ** (age / s.half_life)
    frequency = (1 + m.access_count) / (3 + m.access_count)
    relevance = 1.0
    if goals is not None and len(goals):
        relevance = max(0.0, float((goals @ vector).max()))
    return Scored(m, recency * frequency * relevance, recency, frequency, relevance)


def cluster(items: Sequence[Scored], vectors: Vectors, s: DreamSettings) -> list[list[Scored]]:
    """Greedy clustering in the given order: each item joins the first cluster (in creation
    order) whose centroid is at least ``similarity`` alike and that is not full, else starts a
    cluster. One matrix-vector product per item against every centroid."""
    from tether.llm.embeddings import numpy

    np = numpy()
    n = len(items)
    if n == 0:
        return []
    centroids = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    sums = np.zeros_like(centroids)
    sizes = np.zeros(n, dtype=np.int64)
    members: list[list[Scored]] = []
    for item, vec in zip(items, vectors, strict=True):
        m = len(members)
        home = -1
        if m:
            ok = (centroids[:m] @ vec >= s.similarity) & (sizes[:m] < s.max_cluster)
            if ok.any():
                home = int(np.argmax(ok))
        if home < 0:
            home = m
            members.append([])
        members[home].append(item)
        sums[home] += vec
        sizes[home] += 1
        norm = float(np.linalg.norm(sums[home]))
        centroids[home] = sums[home] / norm if norm > 0 else sums[home]
    return members


def plan_dream(
    memories: Sequence[Memory],
    vectors: Vectors,
    goals: Vectors | None,
    now: float,
    s: DreamSettings,
) -> DreamPlan:
    """Which memories to merge and which to prune (see the module)."""
    cold: list[Scored] = []
    cold_rows: list[int] = []
    hot = 0
    for i, m in enumerate(memories):
        scored = score(m, vectors[i], goals, now, s)
        if now - m.created_at < s.min_age or scored.score >= s.keep_score:
            hot += 1
            continue
        cold.append(scored)
        cold_rows.append(i)
    groups = cluster(cold, vectors[cold_rows], s) if cold else []
    merges = [g for g in groups if len(g) >= s.min_cluster]
    floor = s.prune_below
    prunes = [x for g in groups if len(g) < s.min_cluster for x in g if floor and x.score < floor]
    return DreamPlan(merges, prunes, hot, len(memories))
