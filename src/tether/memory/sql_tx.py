"""What the SQL memory backends share: a transaction handle over either database, and the
column spellings that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tether.memory.types import Memory, MemoryScope, Provenance


class Tx(Protocol):
    """Statements inside one transaction, written with ``?`` placeholders."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...


@dataclass(frozen=True, slots=True)
class SqlFlavor:
    name: str
    null_eq: str
    """``a <null_eq> b`` is true when both are NULL (``IS`` / ``IS NOT DISTINCT FROM``)."""
    find: str
    """Position of a substring: ``instr(haystack, needle)`` / ``strpos(haystack, needle)``."""
    prefix: str = "tether_"


SQLITE = SqlFlavor("sqlite", "IS", "instr")
POSTGRES = SqlFlavor("postgresql", "IS NOT DISTINCT FROM", "strpos")


def tenant_key(scope: MemoryScope) -> str:
    """The tenant column's value: '' stands for no tenant (a real tenant is never empty)."""
    return scope.tenant or ""


def scope_filter(scope: MemoryScope, alias: str = "") -> tuple[str, list[Any]]:
    """``tenant = ? [AND agent = ? ...]``: the WHERE part a query with ``scope`` sees."""
    col = f"{alias}." if alias else ""
    parts = [f"{col}tenant = ?"]
    params: list[Any] = [tenant_key(scope)]
    for name in ("agent", "run_id", "thread_id"):
        value = getattr(scope, name)
        if value is not None:
            parts.append(f"{col}{name} = ?")
            params.append(value)
    return " AND ".join(parts), params


def exact_scope(flavor: SqlFlavor, scope: MemoryScope) -> tuple[str, list[Any]]:
    """The WHERE part matching rows stored with exactly ``scope`` (NULLs equal)."""
    parts = ["tenant = ?"] + [f"{n} {flavor.null_eq} ?" for n in ("agent", "run_id", "thread_id")]
    return " AND ".join(parts), [tenant_key(scope), scope.agent, scope.run_id, scope.thread_id]


def scope_of(tenant: str, agent: str | None, run_id: str | None, thread: str | None) -> MemoryScope:
    return MemoryScope(tenant or None, agent, run_id, thread)


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def provenance_of(raw: str | dict[str, Any] | None) -> Provenance:
    data = json.loads(raw) if isinstance(raw, str) else raw
    return Provenance.from_dict(data)


def placeholders(n: int) -> str:
    return ",".join("?" * n)


MEMORY_COLUMNS = (
    "id, tenant, agent, run_id, thread_id, text, metadata, importance, created_at, "
    "last_accessed_at, access_count, provenance"
)
"""The columns ``memory_of`` reads, in order (the vector and the key are left out)."""


def memory_of(row: Sequence[Any]) -> Memory:
    metadata = row[6]
    return Memory(
        id=row[0],
        scope=scope_of(row[1], row[2], row[3], row[4]),
        text=row[5],
        metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata),
        importance=float(row[7]),
        created_at=float(row[8]),
        last_accessed_at=float(row[9]),
        access_count=int(row[10]),
        provenance=provenance_of(row[11]),
    )


def memory_params(m: Memory) -> list[Any]:
    """``MEMORY_COLUMNS``' values for an insert."""
    return [
        m.id,
        tenant_key(m.scope),
        m.scope.agent,
        m.scope.run_id,
        m.scope.thread_id,
        m.text,
        dump(m.metadata),
        m.importance,
        m.created_at,
        m.last_accessed_at,
        m.access_count,
        dump(m.provenance.to_dict()),
    ]


def page_filter(after: tuple[float, str] | None) -> tuple[str, list[Any]]:
    if after is None:
        return "", []
    return " AND (created_at > ? OR (created_at = ? AND id > ?))", [after[0], after[0], after[1]]
