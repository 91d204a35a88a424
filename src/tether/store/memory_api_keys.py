"""``ApiKeyStore`` in a dict (mixed into ``MemoryStore``)."""

from __future__ import annotations

import dataclasses

from tether.core.clock import Clock
from tether.core.errors import InvalidInputError
from tether.store.api_keys import ApiKeyRecord


def _copy(rec: ApiKeyRecord) -> ApiKeyRecord:
    return dataclasses.replace(rec, scopes=list(rec.scopes))


class MemoryApiKeys:
    clock: Clock
    _api_key_rows: dict[str, ApiKeyRecord]

    def _api_keys(self) -> dict[str, ApiKeyRecord]:
        try:
            return self._api_key_rows
        except AttributeError:
            self._api_key_rows = {}
            return self._api_key_rows

    async def put_api_key(self, record: ApiKeyRecord) -> ApiKeyRecord:
        rows = self._api_keys()
        if record.key_id in rows:
            raise InvalidInputError(f"an API key with id {record.key_id!r} exists already")
        stored = _copy(record)
        stored.created_at = self.clock.now()
        stored.revoked_at = None
        rows[record.key_id] = stored
        return _copy(stored)

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._api_keys().get(key_id)
        return None if row is None else _copy(row)

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKeyRecord]:
        rows = [r for r in self._api_keys().values() if tenant is None or r.tenant == tenant]
        rows.sort(key=lambda r: (r.created_at, r.key_id), reverse=True)
        return [_copy(r) for r in rows]

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._api_keys().get(key_id)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = self.clock.now()
        return _copy(row)

    async def has_api_keys(self) -> bool:
        return any(r.revoked_at is None for r in self._api_keys().values())
