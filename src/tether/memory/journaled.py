"""Memory calls made from inside a run go through the run's effect journal.

``MemoryPlane.remember/recall/forget`` called from a node record their result in the run's
journal (kind ``memory``), so a node re-run after an interrupt, a crash or a retry gets the
recorded memory or hits back instead of writing twice or searching again. The values are kept
as JSON and rebuilt here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

from tether.core.journal import current_journal
from tether.memory.types import Memory, MemoryScope, Provenance, Recalled

T = TypeVar("T")
KIND = "memory"


def memory_dict(m: Memory) -> dict[str, Any]:
    return asdict(m)


def memory_of(data: dict[str, Any]) -> Memory:
    return Memory(
        id=str(data["id"]),
        text=str(data["text"]),
        scope=MemoryScope(**data["scope"]),
        metadata=dict(data.get("metadata") or {}),
        importance=float(data["importance"]),
        created_at=float(data["created_at"]),
        last_accessed_at=float(data["last_accessed_at"]),
        access_count=int(data["access_count"]),
        provenance=Provenance(**data["provenance"]),
    )


def recalled_of(data: dict[str, Any]) -> Recalled:
    return Recalled(
        memory=memory_of(data["memory"]),
        score=float(data["score"]),
        vector_rank=data.get("vector_rank"),
        keyword_rank=data.get("keyword_rank"),
    )


async def once(
    op: str,
    request: dict[str, Any],
    call: Callable[[str | None], Awaitable[T]],
    dump: Callable[[T], Any],
    load: Callable[[Any], T],
) -> T:
    """``call(None)`` outside a run; inside one, journaled under the run's next ``memory`` key,
    which ``call`` gets (the same on every re-run of the node: a write that may have landed
    before a crash, its result not journaled, finds itself again by it)."""
    ctx = current_journal()
    if ctx is None:
        return await call(None)
    key = ctx.call_key(KIND)

    async def recorded() -> Any:
        return dump(await call(key))

    data = await ctx.journaled(KIND, {"op": op, **request}, recorded, key=key, idempotent=True)
    return load(data)
