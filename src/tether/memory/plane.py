"""``MemoryPlane``: one object holding a deployment's memory, for Python code and for agents.

::

    plane = MemoryPlane(InProcessEpisodic(), InProcessKnowledgeGraph())
    scope = MemoryScope(tenant="acme")
    await plane.remember("The user moved to Porto in March.", scope=scope)
    hits = await plane.recall("where does the user live?", scope=scope)
    executor = ToolExecutor(plane.tools(runs=rt.store))   # remember / recall / forget

It holds the episodic store (L3), the knowledge graph (L4, optional) and a context window
(L1/L2, optional), and makes the agent-facing tools (:mod:`tether.memory.tools`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tether.core.errors import ConfigurationError, InvalidInputError
from tether.memory import journaled, validate
from tether.memory.context_window import ContextWindow
from tether.memory.protocol import EpisodicMemory, KnowledgeGraph, NewMemory
from tether.memory.types import Memory, MemoryScope, Provenance, Recalled
from tether.store.protocol import RunStore
from tether.tools.contract import ToolContract


class MemoryPlane:
    """The episodic store, the knowledge graph and the context window of one deployment.

    ``agent`` (optional) names the agent whose memories the tools write and search (a scope
    filter under the tenant); None shares them between the tenant's agents.
    ``max_metadata_bytes`` bounds a memory's metadata (bytes of its compact JSON; 64 KiB by
    default, at most ``validate.METADATA_CEILING``): more is refused with InvalidInputError."""

    def __init__(
        self,
        episodic: EpisodicMemory,
        graph: KnowledgeGraph | None = None,
        *,
        window: ContextWindow | None = None,
        agent: str | None = None,
        max_metadata_bytes: int = validate.MAX_METADATA_BYTES,
    ) -> None:
        if not isinstance(episodic, EpisodicMemory):
            raise ConfigurationError(
                f"MemoryPlane needs an EpisodicMemory backend, got {type(episodic).__name__}"
            )
        if graph is not None and not isinstance(graph, KnowledgeGraph):
            raise ConfigurationError(
                f"MemoryPlane's graph must be a KnowledgeGraph, got {type(graph).__name__}"
            )
        ceiling = validate.METADATA_CEILING
        if (
            isinstance(max_metadata_bytes, bool)
            or not isinstance(max_metadata_bytes, int)
            or not 1 <= max_metadata_bytes <= ceiling
        ):
            raise ConfigurationError(
                f"MemoryPlane's max_metadata_bytes must be an integer in 1..{ceiling} (bytes of "
                f"a memory's metadata as JSON), got {max_metadata_bytes!r}"
            )
        self.max_metadata_bytes = max_metadata_bytes
        self.episodic = episodic
        self.graph = graph
        self.window = window
        self.agent = agent

    async def remember(
        self,
        text: str,
        *,
        scope: MemoryScope,
        importance: float = 0.5,
        metadata: dict[str, Any] | None = None,
        provenance: Provenance | None = None,
        journal: bool = True,
    ) -> Memory:
        """Store a memory. Inside a run (``journal``) the write is journaled: a re-run node
        gets the recorded memory back instead of storing it twice."""
        metadata = validate.metadata(metadata, self.max_metadata_bytes)

        async def call(key: str | None) -> Memory:
            return await self.add_once(
                text,
                scope=scope,
                key=key,
                importance=importance,
                metadata=metadata,
                provenance=provenance,
            )

        if not journal:
            return await call(None)
        request = {"scope": asdict(scope), "text": text}
        return await journaled.once(
            "remember", request, call, journaled.memory_dict, journaled.memory_of
        )

    async def add_once(
        self,
        text: str,
        *,
        scope: MemoryScope,
        key: str | None,
        importance: float = 0.5,
        metadata: dict[str, Any] | None = None,
        provenance: Provenance | None = None,
    ) -> Memory:
        """Add a memory; with an idempotency (journal) ``key``, once: its id is derived from
        the key, the scope and the text, so a retry after a crash between the store's write
        and the journal's record of it gets the stored memory back instead of a second copy,
        while another tenant, or another text, under the same key is a memory of its own."""
        metadata = validate.metadata(metadata, self.max_metadata_bytes)
        if key is None:
            return await self.episodic.add(
                text, scope=scope, metadata=metadata, importance=importance, provenance=provenance
            )
        ident = validate.idempotent_memory_id(key, validate.scope(scope), text)
        found = await self.episodic.get(ident, scope=scope)
        if found is not None:
            return found
        item = NewMemory(text, metadata or {}, importance, provenance, id=ident)
        try:
            return (await self.episodic.add_many([item], scope=scope))[0]
        except InvalidInputError:  # the same call, made at once elsewhere, stored it first
            found = await self.episodic.get(ident, scope=scope)
            if found is None:
                raise
            return found

    async def recall(
        self, query: str, *, scope: MemoryScope, k: int = 5, journal: bool = True
    ) -> list[Recalled]:
        """The ``k`` best memories for ``query`` in ``scope``; each carries its provenance
        (content from outside stays untrusted wherever it is recalled). Inside a run
        (``journal``) the hits are journaled: a re-run node sees the same ones."""

        async def call(_: str | None) -> list[Recalled]:
            return await self.episodic.search(query, scope=scope, k=k)

        if not journal:
            return await call(None)
        request = {"scope": asdict(scope), "query": query, "k": k}
        return await journaled.once(
            "recall",
            request,
            call,
            lambda hits: [asdict(h) for h in hits],
            lambda data: [journaled.recalled_of(d) for d in data],
        )

    async def forget(self, ids: Sequence[str], *, scope: MemoryScope, journal: bool = True) -> int:
        """Delete memories by id in ``scope``; how many were. Journaled inside a run."""

        async def call(_: str | None) -> int:
            return await self.episodic.forget(ids, scope=scope)

        if not journal:
            return await call(None)
        request = {"scope": asdict(scope), "ids": list(ids)}
        return await journaled.once("forget", request, call, int, int)

    def tools(self, *, runs: RunStore | None = None) -> list[ToolContract]:
        """``remember``, ``recall`` and ``forget`` as tool contracts. ``runs`` (the runtime's
        store) lets them read the tenant of the run they are called from."""
        from tether.memory.tools import memory_tools

        return memory_tools(self, runs=runs)

    async def close(self) -> None:
        await self.episodic.close()
        if self.graph is not None:
            await self.graph.close()
