"""API keys of ``tether serve`` (``tether.server.keys``), as the store keeps them.

A key is ``tth_<key_id>_<secret>``. The store keeps ``key_id`` in clear (the primary key: a
request's key is found with one indexed read) and an argon2 hash of the whole key, never the
key itself. ``scopes`` are what the key may do (read, submit, approve, admin); ``tenant`` whose
runs it sees and submits. A revoked key keeps its row (``revoked_at`` set) for the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

SCOPES = ("read", "submit", "approve", "admin")
"""What a key may do, each a scope a key can be given (``tether keys create --scopes``)."""


@dataclass(slots=True)
class ApiKeyRecord:
    key_id: str
    tenant: str
    key_hash: str
    """argon2 hash (PHC string) of the whole key."""
    scopes: list[str] = field(default_factory=list)
    name: str = ""
    """What the key is for (a label, shown by ``tether keys list``)."""
    created_at: float = 0.0
    revoked_at: float | None = None


@runtime_checkable
class ApiKeyStore(Protocol):
    async def put_api_key(self, record: ApiKeyRecord) -> ApiKeyRecord:
        """Insert a key; a ``key_id`` that exists raises InvalidInputError. Returns the
        stored record (``created_at`` set by the store)."""
        ...

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKeyRecord]:
        """Every key (of ``tenant``), newest first, revoked ones included."""
        ...

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Mark the key revoked (once: a second revoke keeps the first time). None when no
        such key."""
        ...

    async def has_api_keys(self) -> bool:
        """Whether any key that is not revoked exists (no key: local single-tenant mode)."""
        ...
