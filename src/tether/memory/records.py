"""Turning ``add``/``add_many`` arguments into validated ``Memory`` records (shared by every
backend), and the cursor of ``list``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from tether.core.clock import Clock
from tether.core.errors import InvalidInputError
from tether.memory import validate
from tether.memory.protocol import NewMemory
from tether.memory.types import Memory, MemoryScope


def prepare(items: Sequence[NewMemory], scope: MemoryScope, clock: Clock) -> list[Memory]:
    """Validated records with fresh ids; nothing is written if any item is bad."""
    validate.scope(scope)
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InvalidInputError("add_many takes a list of NewMemory items")
    if len(items) > validate.MAX_IDS:
        raise InvalidInputError(f"add_many takes at most {validate.MAX_IDS} items at a time")
    now = clock.now()
    out: list[Memory] = []
    named: set[str] = set()
    for n, item in enumerate(items):
        if not isinstance(item, NewMemory):
            raise InvalidInputError(f"add_many item {n} is a {type(item).__name__}, not NewMemory")
        where = item.scope or scope
        validate.scope(where)
        if where.tenant != scope.tenant:
            raise InvalidInputError(
                f"add_many item {n} names tenant {where.tenant!r} inside a call for tenant "
                f"{scope.tenant!r}; one call writes one tenant's memories"
            )
        created = (
            now if item.created_at is None else validate.timestamp(item.created_at, "created_at")
        )
        if item.id is None:
            ident = validate.new_memory_id()
        else:
            ident = validate.memory_id(item.id)
            if ident in named:
                raise InvalidInputError(f"add_many names memory id {ident!r} twice")
            named.add(ident)
        out.append(
            Memory(
                id=ident,
                text=validate.text(item.text),
                scope=where,
                metadata=validate.metadata(item.metadata),
                importance=validate.importance(item.importance),
                created_at=created,
                last_accessed_at=created,
                access_count=0,
                provenance=validate.provenance(item.provenance),
            )
        )
    return out


def taken(ids: Sequence[str]) -> InvalidInputError:
    return InvalidInputError(
        f"memory id {ids[0]!r} is already stored; an id named in NewMemory(id=...) is for one "
        "memory: look it up with get() before adding it again"
    )


def named_ids(memories: Sequence[Memory], items: Sequence[NewMemory]) -> list[str]:
    """The ids of ``memories`` their ``items`` named (not made up here)."""
    return [m.id for m, item in zip(memories, items, strict=True) if item.id is not None]


def touched(memory: Memory, now: float) -> Memory:
    return replace(
        memory,
        last_accessed_at=max(now, memory.last_accessed_at),
        access_count=memory.access_count + 1,
    )


def encode_cursor(memory: Memory) -> str:
    return f"{memory.created_at!r}|{memory.id}"


def decode_cursor(cursor: object) -> tuple[float, str] | None:
    if cursor is None:
        return None
    if isinstance(cursor, str):
        stamp, sep, ident = cursor.partition("|")
        if sep and ident:
            try:
                at = float(stamp)
            except ValueError:
                pass
            else:
                if math.isfinite(at):  # list() writes a memory's created_at, always finite
                    return at, ident
    raise InvalidInputError(
        f"cursor {cursor!r:.80} is not one list() returned; pass None for the first page"
    )
