"""The agent-facing memory tools: ``remember``, ``recall``, ``forget``.

They are ordinary ``ToolContract``s: call them through a ``ToolExecutor`` from any node or
agent and each call is validated, governed and journaled like any tool call (a replayed run
gets the recorded result; a recall is not re-run). Every call acts for the tenant of the run
it is made from (:mod:`tether.memory.tenancy`): the model never names a tenant.

A recalled memory carries its ``provenance`` (who produced it, in which run, whether it is
trusted). Tool results are untrusted content for the governance injection guard whatever
they say, so text an attacker once got remembered cannot make a later run call a write tool
without the guard noticing; the provenance tells a human (or a policy) where it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from tether.memory.tenancy import RunTenants, call_tenant
from tether.memory.types import MemoryScope, Provenance, Recalled
from tether.store.protocol import RunStore
from tether.tools.contract import ToolContract, tool
from tether.tools.policies import Scope
from tether.tools.results import ToolContext

if TYPE_CHECKING:
    from tether.memory.plane import MemoryPlane

Within = Literal["tenant", "thread", "run"]
MetadataKey = Annotated[str, Field(min_length=1, max_length=100)]
MetadataValue = Annotated[str, Field(max_length=2_000)] | int | float | bool
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=32)]
"""What a model may attach to a memory it remembers: at most 32 labels, each key at most 100
characters and each text value at most 2,000 (the plane's max_metadata_bytes bounds the whole)."""


def recalled_dict(hit: Recalled) -> dict[str, Any]:
    """A recall hit as a tool result: text, score, when, metadata and provenance."""
    m = hit.memory
    return {
        "id": m.id,
        "text": m.text,
        "score": round(hit.score, 6),
        "created_at": m.created_at,
        "importance": m.importance,
        "metadata": m.metadata,
        "provenance": m.provenance.to_dict(),
        "trusted": m.provenance.trusted,
    }


def memory_tools(plane: MemoryPlane, *, runs: RunStore | None = None) -> list[ToolContract]:
    """``[remember, recall, forget]`` over ``plane``; ``runs`` reads the calling run's tenant."""
    tenants = RunTenants(runs) if runs is not None else None

    async def where(ctx: ToolContext) -> tuple[str | None, str | None, str | None]:
        return await call_tenant(tenants, ctx.run, ctx.tenant, ctx.tool)

    async def remember(
        text: Annotated[str, Field(min_length=1, max_length=10_000)],
        importance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5,
        metadata: Metadata | None = None,
        ctx: ToolContext | None = None,
    ) -> dict[str, Any]:
        """Store a memory (a fact, preference, event or lesson) to recall in later runs."""
        assert ctx is not None
        tenant, run_id, thread = await where(ctx)
        step = getattr(ctx.run, "step", None)
        memory = await plane.add_once(  # the tool call itself is the journal entry; its key
            text,  # names the memory, so a retry after a crash stores it once
            scope=MemoryScope(tenant, agent=plane.agent, run_id=run_id, thread_id=thread),
            key=ctx.key,
            importance=importance,
            metadata=dict(metadata or {}),
            provenance=Provenance(
                source="model", trusted=False, run_id=run_id, step=step, tool="remember"
            ),
        )
        return {"id": memory.id, "created_at": memory.created_at}

    async def recall(
        query: Annotated[str, Field(min_length=1, max_length=2_000)],
        k: Annotated[int, Field(ge=1, le=50)] = 5,
        within: Within = "tenant",
        ctx: ToolContext | None = None,
    ) -> list[dict[str, Any]]:
        """Search memories by meaning and keywords, best first, recent weighing more.
        ``within``: all of this tenant's memories, this conversation thread's, or this run's."""
        assert ctx is not None
        tenant, run_id, thread = await where(ctx)
        scope = MemoryScope(
            tenant,
            agent=plane.agent,
            run_id=run_id if within == "run" else None,
            thread_id=thread if within == "thread" else None,
        )
        if (within == "run" and run_id is None) or (within == "thread" and thread is None):
            return []
        hits = await plane.recall(query, scope=scope, k=k, journal=False)
        return [recalled_dict(h) for h in hits]

    async def forget(
        ids: Annotated[
            list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=100)
        ],
        ctx: ToolContext | None = None,
    ) -> dict[str, int]:
        """Delete memories by id (ids from ``recall``); ids of other tenants are not found."""
        assert ctx is not None
        tenant, _, _ = await where(ctx)
        n = await plane.forget(ids, scope=MemoryScope(tenant, agent=plane.agent), journal=False)
        return {"forgotten": n}

    contracts: list[ToolContract] = [
        tool(remember, name="remember", scope=Scope.WRITE, idempotent=True),
        tool(recall, name="recall", scope=Scope.READ),
        tool(forget, name="forget", scope=Scope.WRITE, idempotent=True),
    ]
    return contracts
