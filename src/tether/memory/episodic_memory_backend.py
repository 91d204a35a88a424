"""``InProcessEpisodic``: the reference EpisodicMemory, in a dict, for tests and demos.

Exact cosine search over the scope's vectors (numpy) and BM25 over its texts, fused like every
backend (``fusion.fuse``). Nothing survives the process. Memories are filed by tenant and each
text is tokenised once, when it is added: a search reads its tenant's memories only, so it
costs what the scope holds, whatever other tenants hold.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.llm.embeddings import Embedder, default_embedder, embed_unit, numpy
from tether.memory import fusion, records, validate
from tether.memory.protocol import DEFAULT_RANKING, NewMemory
from tether.memory.types import Memory, MemoryScope, Provenance, Ranking, Recalled

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


class InProcessEpisodic:
    """Episodic memory held in this process (see the module)."""

    def __init__(self, *, embedder: Embedder | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self._embedder = embedder
        self.clock = clock
        self._memories: dict[str, Memory] = {}
        self._vectors: dict[str, Vectors] = {}
        self._bags: dict[str, Counter[str]] = {}
        """Each memory's words (accents off, as FTS5 takes them) and how often each occurs."""
        self._tenants: dict[str | None, dict[str, None]] = {}
        """Each tenant's memory ids, oldest first (a dict as an ordered set)."""
        self._lock = asyncio.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

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
        vectors = await embed_unit(self.embedder, [m.text for m in prepared])
        bags = [Counter(fusion.tokens(fusion.fold(m.text))) for m in prepared]
        async with self._lock:
            if held := [i for i in records.named_ids(prepared, items) if i in self._memories]:
                raise records.taken(held)
            for memory, vector, bag in zip(prepared, vectors, bags, strict=True):
                self._memories[memory.id] = memory
                self._vectors[memory.id] = vector
                self._bags[memory.id] = bag
                self._tenants.setdefault(memory.scope.tenant, {})[memory.id] = None
        return prepared

    def _in_scope(self, scope: MemoryScope) -> dict[str, Memory]:
        """The memories ``scope`` sees, oldest first (its tenant's only are looked at)."""
        held = self._memories
        ids = self._tenants.get(scope.tenant, {})
        return {i: held[i] for i in ids if scope.covers(held[i].scope)}

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
        if not query.strip():
            return []
        now = self.clock.now() if now is None else validate.timestamp(now, "now")
        pool = fusion.pool_size(k, ranking)
        use_vec, use_kw = fusion.uses(ranking)
        in_scope = self._in_scope(scope)
        vector_ids: list[str] = []
        if use_vec and in_scope:
            np = numpy()
            q = (await embed_unit(self.embedder, [query]))[0]
            ids = list(in_scope)
            sims = np.stack([self._vectors[i] for i in ids]) @ q
            order = np.argsort(-sims, kind="stable")[:pool]
            vector_ids = [ids[j] for j in order]
        keyword_ids: list[str] = []
        if use_kw:
            terms = fusion.query_terms(fusion.fold(query))  # accents off, as FTS5 takes them
            bags = {i: self._bags[i] for i in in_scope}
            if len(bags) >= fusion.PRUNE_FROM:  # the scope's statistics, no other tenant's
                df = {t: sum(1 for b in bags.values() if t in b) for t in terms}
                terms = fusion.prune_terms(terms, df, len(bags))
            keyword_ids = fusion.Bm25().rank_bags(terms, bags, pool)
        hits = fusion.fuse(vector_ids, keyword_ids, in_scope, now=now, ranking=ranking, k=k)
        if not record_access:
            return hits
        out: list[Recalled] = []
        async with self._lock:
            for hit in hits:
                current = self._memories.get(hit.memory.id)
                if current is None:  # forgotten while we ranked
                    continue
                fresh = records.touched(current, now)
                self._memories[fresh.id] = fresh
                out.append(Recalled(fresh, hit.score, hit.vector_rank, hit.keyword_rank))
        return out

    async def get(self, id: str, *, scope: MemoryScope) -> Memory | None:
        validate.scope(scope)
        memory = self._memories.get(id) if isinstance(id, str) else None
        return memory if memory is not None and scope.covers(memory.scope) else None

    async def forget(self, ids: Sequence[str], *, scope: MemoryScope) -> int:
        validate.scope(scope)
        wanted = validate.ids(ids)
        gone = 0
        async with self._lock:
            for i in wanted:
                memory = self._memories.get(i)
                if memory is not None and scope.covers(memory.scope):
                    del self._memories[i]
                    del self._vectors[i]
                    del self._bags[i]
                    del self._tenants[memory.scope.tenant][i]
                    gone += 1
        return gone

    async def list(
        self, scope: MemoryScope, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Memory], str | None]:
        validate.scope(scope)
        limit = validate.limit(limit)
        after = records.decode_cursor(cursor)
        rows = sorted(self._in_scope(scope).values(), key=lambda m: (m.created_at, m.id))
        if after is not None:
            rows = [m for m in rows if (m.created_at, m.id) > after]
        page = rows[:limit]
        more = len(rows) > limit
        return page, records.encode_cursor(page[-1]) if more and page else None

    async def count(self, scope: MemoryScope) -> int:
        validate.scope(scope)
        return len(self._in_scope(scope))

    async def close(self) -> None:
        return None
