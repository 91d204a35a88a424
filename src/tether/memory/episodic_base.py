"""``SqlEpisodicBase``: the part of an SQL episodic backend that is the same on every database.

It validates, embeds, fuses and pages; a subclass supplies the statements (``_insert``,
``_candidates``, ``_touch``, ``_select``, ``_delete``, ``_count``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError, InvalidInputError, StoreError
from tether.llm.embeddings import Embedder, default_embedder, embed_unit
from tether.memory import fusion, records, validate
from tether.memory.protocol import DEFAULT_RANKING, NewMemory
from tether.memory.sql_tx import page_filter, placeholders, scope_filter
from tether.memory.types import Memory, MemoryScope, Provenance, Ranking, Recalled

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


_log = logging.getLogger(__name__)


class SqlEpisodicBase(ABC):
    dimensions: int

    def __init__(self, *, embedder: Embedder | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self._embedder = embedder
        self.clock = clock

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def _check_embedder(self, stored: tuple[int, str] | None) -> None:
        """Refuse an embedder other than the one the store's vectors came from (``stored``:
        their dimensions and the embedder's name, as recorded when the store was made; None
        for a new store): vectors of different models, or of one model at another precision
        (``MiniLMEmbedder(precision="int8")``), cannot be compared with one another."""
        if stored is None:
            return
        dims, name = stored
        if dims != self.embedder.dimensions:
            raise ConfigurationError(
                f"this memory store holds {dims}-dimensional vectors but the embedder "
                f"{self.embedder.name!r} makes {self.embedder.dimensions}; open it with the "
                "embedder it was filled with (vectors of different models cannot be compared)"
            )
        if name != self.embedder.name:
            raise ConfigurationError(
                f"this memory store's vectors come from the embedder {name!r}, not "
                f"{self.embedder.name!r}; open it with {name!r} (vectors of different models "
                "or precisions cannot be compared), or add its memories again to a new store "
                "with the embedder you want"
            )

    async def add(
        self,
        text: str,
        *,
        scope: MemoryScope,
        metadata: dict[str, Any] | None = None,
        importance: float = 0.5,
        provenance: Provenance | None = None,
        created_at: float | None = None,
    ) -> Memory:
        item = NewMemory(text, metadata or {}, importance, provenance, created_at)
        return (await self.add_many([item], scope=scope))[0]

    async def add_many(self, items: Sequence[NewMemory], *, scope: MemoryScope) -> list[Memory]:
        prepared = records.prepare(items, scope, self.clock)
        if not prepared:
            return []
        if named := records.named_ids(prepared, items):
            await self._refuse_held(named)
        vectors = await embed_unit(self.embedder, [m.text for m in prepared])
        try:
            await self._insert(prepared, vectors)
        except StoreError:
            if named:  # another writer stored a named id since the check: say so, typed
                await self._refuse_held(named)
            raise
        return prepared

    async def _refuse_held(self, ids: list[str]) -> None:
        held = await self._select(f"id IN ({placeholders(len(ids))})", ids, "", len(ids))
        if held:
            raise records.taken([m.id for m in held])

    async def search(
        self,
        query: str,
        *,
        scope: MemoryScope,
        k: int = 10,
        now: float | None = None,
        ranking: Ranking = DEFAULT_RANKING,
        record_access: bool = True,
    ) -> list[Recalled]:
        validate.scope(scope)
        query = validate.query(query)
        k = validate.k(k)
        if not isinstance(ranking, Ranking):
            raise InvalidInputError("ranking must be a Ranking")
        if not query.strip():
            return []
        now = self.clock.now() if now is None else validate.timestamp(now, "now")
        use_vec, use_kw = fusion.uses(ranking)
        qvec = (await embed_unit(self.embedder, [query]))[0] if use_vec else None
        # accents off, as every backend indexes the words (İstanbul: istanbul, not i, stanbul)
        terms = fusion.query_terms(fusion.fold(query)) if use_kw else []
        pool = fusion.pool_size(k, ranking)
        vector_ids, keyword_ids, found = await self._candidates(qvec, terms, scope, pool)
        hits = fusion.fuse(vector_ids, keyword_ids, found, now=now, ranking=ranking, k=k)
        if not record_access or not hits:
            return hits
        try:
            await self._touch([h.memory.id for h in hits], now)
        except StoreError as exc:  # a full disk, a read-only replica: the answer still stands
            _log.warning("search results' access counts not recorded: %s", exc)
            return hits
        return [
            Recalled(records.touched(h.memory, now), h.score, h.vector_rank, h.keyword_rank)
            for h in hits
        ]

    async def get(self, id: str, *, scope: MemoryScope) -> Memory | None:
        validate.scope(scope)
        if not isinstance(id, str):
            return None
        where, params = scope_filter(scope)
        rows = await self._select(f"{where} AND id = ?", [*params, id], "", 1)
        return rows[0] if rows else None

    async def forget(self, ids: Sequence[str], *, scope: MemoryScope) -> int:
        validate.scope(scope)
        wanted = validate.ids(ids)
        return await self._delete(wanted, scope) if wanted else 0

    async def count(self, scope: MemoryScope) -> int:
        validate.scope(scope)
        where, params = scope_filter(scope)
        return await self._count(where, params)

    # -- the database's part ---------------------------------------------------------------
    @abstractmethod
    async def _insert(self, memories: list[Memory], vectors: Vectors) -> None: ...

    @abstractmethod
    async def _candidates(
        self, qvec: Any, terms: list[str], scope: MemoryScope, pool: int
    ) -> tuple[list[str], list[str], dict[str, Memory]]:
        """The ids the vector search (``qvec`` not None) and the keyword search (``terms``)
        rank first in ``scope``, up to ``pool`` each, and the memories they name."""

    @abstractmethod
    async def _touch(self, ids: list[str], now: float) -> None: ...

    @abstractmethod
    async def _select(
        self, where: str, params: list[Any], order: str, limit: int
    ) -> list[Memory]: ...

    @abstractmethod
    async def _delete(self, ids: list[str], scope: MemoryScope) -> int: ...

    @abstractmethod
    async def _count(self, where: str, params: list[Any]) -> int: ...

    # last: inside the class, "list" names this method from here on
    async def list(
        self, scope: MemoryScope, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Memory], str | None]:
        validate.scope(scope)
        limit = validate.limit(limit)
        where, params = scope_filter(scope)
        after_sql, after_params = page_filter(records.decode_cursor(cursor))
        rows = await self._select(
            where + after_sql, params + after_params, "ORDER BY created_at, id", limit + 1
        )
        page = rows[:limit]
        return page, records.encode_cursor(page[-1]) if len(rows) > limit else None
