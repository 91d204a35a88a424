"""API keys: made, hashed at rest with argon2, checked fast.

A key reads ``tth_<key_id>_<secret>``: ``key_id`` (12 hex characters) is stored in clear and
finds the key's row with one indexed read, so a request verifies one argon2 hash, never scans
them all. A verified key is remembered in memory for ``cache_ttl`` seconds under the SHA-256
of the whole key (never the key itself), so steady traffic pays for argon2 once per key and
TTL; a revoked key stops working within that TTL in every server (at once in the server whose
``forget`` was called).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tether.core.errors import InvalidInputError
from tether.core.tenants import check_tenant_name
from tether.graph.state import check_text
from tether.store.api_keys import SCOPES as SCOPES
from tether.store.api_keys import ApiKeyRecord, ApiKeyStore

PREFIX = "tth"
"""read: see runs, events, workflows; submit: start, resume (answering an interrupt too),
cancel and fork runs; approve: decide approval requests; admin: everything (and
``/metrics``)."""
_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
"""Light argon2id settings: a key carries 256 random bits, so no hash cost adds to what its
entropy already guards (slow hashing protects low-entropy passwords); a cold check costs a few
milliseconds. Hashes made with other settings still verify (the PHC string names them)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a tenant (None: the local single tenant, who sees every run),
    its scopes and the key that proved it (None in local mode)."""

    tenant: str | None
    scopes: frozenset[str]
    key_id: str | None = None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    @property
    def actor(self) -> str:
        return f"api:{self.key_id}" if self.key_id else "api:local"


LOCAL = Principal(None, frozenset(SCOPES))


def check_scopes(scopes: Iterable[str]) -> list[str]:
    out = sorted(set(scopes))
    bad = [s for s in out if s not in SCOPES]
    if bad or not out:
        raise InvalidInputError(
            f"unknown scope(s) {bad}; a key takes one or more of {', '.join(SCOPES)}"
            if bad
            else f"a key needs at least one scope: {', '.join(SCOPES)}"
        )
    return out


def check_tenant(tenant: str) -> str:
    """The rule ``Runtime.start(tenant=)`` applies: a key's tenant is one a run can have."""
    return check_tenant_name(tenant)


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, key)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return _HASHER.hash(key)


def key_id_of(key: str) -> str | None:
    """The key id a presented key claims, or None when it is not shaped like a key."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    if any(c not in "0123456789abcdef" for c in parts[1]):
        return None
    return parts[1]


async def create_key(
    store: ApiKeyStore, tenant: str, scopes: Iterable[str], name: str = ""
) -> tuple[ApiKeyRecord, str]:
    """Store a new key (its hash) and return its record and the key, shown this once."""
    check_text(name=name)
    key_id, key = new_key()
    rec = ApiKeyRecord(key_id, check_tenant(tenant), hash_key(key), check_scopes(scopes), name)
    return await store.put_api_key(rec), key


class KeyVerifier:
    """Checks presented keys against a store, remembering good ones for ``cache_ttl`` s."""

    def __init__(
        self,
        store: ApiKeyStore,
        *,
        cache_ttl: float = 30.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_ttl = cache_ttl
        self._now = now
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def verify(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None for anything else."""
        digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
        hit = self._cache.get(digest)
        now = self._now()
        if hit is not None and hit[0] > now:
            return hit[1]
        key_id = key_id_of(key)
        if key_id is None:
            return None
        rec = await self.store.get_api_key(key_id)
        if rec is None or rec.revoked_at is not None:
            self._cache.pop(digest, None)
            return None
        try:
            _HASHER.verify(rec.key_hash, key)
        except (VerificationError, InvalidHashError):
            return None
        principal = Principal(rec.tenant, frozenset(rec.scopes), rec.key_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.cache_ttl, principal)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop a revoked key from the cache at once."""
        for digest, (_, p) in list(self._cache.items()):
            if p.key_id == key_id:
                del self._cache[digest]
