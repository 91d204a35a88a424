"""The memory plane's two storage protocols: ``EpisodicMemory`` and ``KnowledgeGraph``.

Backends: in-process (``InProcessEpisodic``/``InProcessKnowledgeGraph``), SQLite (FTS5 + an ANN
index) and PostgreSQL (pgvector HNSW + tsvector). Every backend passes tests/memory's one
conformance suite. The shape, as the other parts of the plane use it::

    scope = MemoryScope(tenant="acme", agent="support", run_id=None, thread_id=None)

    class EpisodicMemory(Protocol):
        async def add(text, *, scope, metadata=None, importance=0.5, provenance=None,
                      created_at=None) -> Memory
        async def add_many(items: Sequence[NewMemory], *, scope) -> list[Memory]
        async def search(query, *, scope, k=10, now=None, ranking=Ranking(),
                         record_access=True) -> list[Recalled]
        async def get(id, *, scope) -> Memory | None
        async def forget(ids, *, scope) -> int             # how many were deleted
        async def list(scope, *, limit=100, cursor=None) -> tuple[list[Memory], str | None]
        async def count(scope) -> int
        async def close() -> None

    class KnowledgeGraph(Protocol):
        async def assert_fact(subject, relation, object, *, scope, provenance=None,
                              valid_from=None, functional=None) -> Fact
        async def retract(subject, relation, object, *, scope, at=None) -> int
        async def facts(*, scope, subject=None, relation=None, object=None, at=None,
                        include_history=False, limit=1000) -> list[Fact]
        async def hops(start, *, scope, relations=None, depth=2, direction="out", at=None)
                        -> list[Hop]
        async def history(subject, relation, *, scope) -> list[Fact]   # oldest first
        async def forget_facts(ids, *, scope) -> int
        async def close() -> None

    class MemoryBackend(EpisodicMemory, Protocol):      # what open_memory(url) returns
        kg: KnowledgeGraph                              # its graph, in the same database
        async def setup() -> None                       # tables, pgvector check, ANN index

Semantics every backend keeps:

* **Scope.** ``scope.tenant`` matches exactly, always (None is the single-tenant default, its
  own tenant); ``agent``/``run_id``/``thread_id`` set in a query scope filter, None means any.
  A memory or fact is stored with the full scope it was added with. ``get``/``forget`` of an id
  outside the scope behave as if the id did not exist.
* **search** = vector similarity (cosine, the embedder's unit vectors) and full-text keyword
  search (BM25 / ``ts_rank``) each give up to ``ranking.candidates`` hits in the scope; their
  ranks are fused by reciprocal rank fusion, multiplied by the temporal decay (age from
  ``created_at`` to ``now``) and the importance factor (see ``Ranking``); the top ``k`` are
  returned best first, and (``record_access``) their ``access_count``/``last_accessed_at`` are
  updated. ``now`` defaults to the backend's clock, so tests drive decay with a fake clock.
* **Knowledge graph.** ``assert_fact`` is an upsert: the same (subject, relation, object) still
  valid is returned unchanged. For a *functional* relation (one object per subject at a time:
  ``lives_in``, ``status``; ``functional=True`` or named in the backend's
  ``functional_relations``) a fact with another object supersedes the valid one: the old row
  gets ``valid_to`` = the new ``valid_from`` and ``superseded_by`` = the new id; nothing is
  deleted. A fact asserted with a ``valid_from`` before the next fact already known (any
  object for a functional relation, the same object otherwise) ends where that one begins.
  ``facts(at=T)`` answers "what did we hold true at T" (``valid_from <= T <
  valid_to``); ``at=None`` means now; ``include_history=True`` drops the time filter.
  ``hops`` walks edges breadth first (one query per level on the SQL backends) up to ``depth``
  edges, following ``relations`` (None: all), subject→object (``"out"``), object→subject
  (``"in"``) or both, over facts valid at ``at``; every node reached once, at its least depth.

Errors: bad arguments raise ``InvalidInputError``; a misconfigured backend (no pgvector, an
embedder of the wrong dimension) ``ConfigurationError``; database failures ``StoreError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tether.memory.types import (
    Direction,
    Fact,
    Hop,
    Memory,
    MemoryScope,
    Provenance,
    Ranking,
    Recalled,
)

DEFAULT_RANKING = Ranking()


@dataclass(frozen=True, slots=True)
class NewMemory:
    """One item for ``add_many``."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    provenance: Provenance | None = None
    created_at: float | None = None
    scope: MemoryScope | None = None
    """Overrides the ``scope`` given to ``add_many`` (same tenant required)."""
    id: str | None = None
    """The memory's id; None (the default): a new time-sortable one. A caller that may write
    the same memory again (a retry after a crash) names it, with an id derived from its
    idempotency key, and looks it up with ``get`` first: an id already stored (in any scope) is
    refused with ``InvalidInputError``."""


@runtime_checkable
class EpisodicMemory(Protocol):
    """Searchable memories of what happened (see the module for the semantics)."""

    async def add(
        self,
        text: str,
        *,
        scope: MemoryScope,
        metadata: dict[str, Any] | None = None,
        importance: float = 0.5,
        provenance: Provenance | None = None,
        created_at: float | None = None,
    ) -> Memory: ...

    async def add_many(self, items: Sequence[NewMemory], *, scope: MemoryScope) -> list[Memory]: ...

    async def search(
        self,
        query: str,
        *,
        scope: MemoryScope,
        k: int = 10,
        now: float | None = None,
        ranking: Ranking = DEFAULT_RANKING,
        record_access: bool = True,
    ) -> list[Recalled]: ...

    async def get(self, id: str, *, scope: MemoryScope) -> Memory | None: ...

    async def forget(self, ids: Sequence[str], *, scope: MemoryScope) -> int: ...

    async def list(
        self, scope: MemoryScope, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Memory], str | None]:
        """Memories in the scope, oldest first (created_at, id); the cursor of the next page,
        None at the end."""
        ...

    async def count(self, scope: MemoryScope) -> int: ...

    async def close(self) -> None: ...


@runtime_checkable
class KnowledgeGraph(Protocol):
    """Facts and relations with validity in time (see the module for the semantics)."""

    async def assert_fact(
        self,
        subject: str,
        relation: str,
        object: str,
        *,
        scope: MemoryScope,
        provenance: Provenance | None = None,
        valid_from: float | None = None,
        functional: bool | None = None,
    ) -> Fact: ...

    async def retract(
        self,
        subject: str,
        relation: str,
        object: str,
        *,
        scope: MemoryScope,
        at: float | None = None,
    ) -> int: ...

    async def facts(
        self,
        *,
        scope: MemoryScope,
        subject: str | None = None,
        relation: str | None = None,
        object: str | None = None,
        at: float | None = None,
        include_history: bool = False,
        limit: int = 1000,
    ) -> list[Fact]: ...

    async def hops(
        self,
        start: str,
        *,
        scope: MemoryScope,
        relations: Sequence[str] | None = None,
        depth: int = 2,
        direction: Direction = "out",
        at: float | None = None,
    ) -> list[Hop]: ...

    async def history(self, subject: str, relation: str, *, scope: MemoryScope) -> list[Fact]: ...

    async def forget_facts(self, ids: Sequence[str], *, scope: MemoryScope) -> int: ...

    async def close(self) -> None: ...


__all__ = [
    "DEFAULT_RANKING",
    "EpisodicMemory",
    "Fact",
    "Hop",
    "KnowledgeGraph",
    "Memory",
    "MemoryBackend",
    "MemoryScope",
    "NewMemory",
    "Provenance",
    "Ranking",
    "Recalled",
]


@runtime_checkable
class MemoryBackend(EpisodicMemory, Protocol):
    """What ``open_memory`` returns: episodic memory with its knowledge graph at ``.kg``."""

    @property
    def kg(self) -> KnowledgeGraph: ...

    async def setup(self) -> None:
        """Create the tables (SQL backends), open the vector index; call once before use."""
        ...
