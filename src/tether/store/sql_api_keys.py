"""API keys (``tether.store.api_keys``) of the SQL backends: schema v15 and its statements,
written once for SQLite and PostgreSQL (mixed into ``SqlStore``).

v15 also indexes runs by ``(tenant, created_at, run_id)``: a tenant's runs list, newest first
and paged by cursor, is read in order from it (``list_runs(tenant=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.core.errors import InvalidInputError
from tether.core.serde import dumps, loads
from tether.store.api_keys import ApiKeyRecord
from tether.store.sql_base import Dialect, Statements

COLUMNS = ("key_id", "tenant", "key_hash", "scopes", "name", "created_at", "revoked_at")


def migration(d: Dialect) -> list[str]:
    """Schema v15: ``api_keys`` and the tenant index of ``runs``."""
    p, b, r = d.prefix, d.blob, d.real
    return [
        f"""CREATE TABLE {p}api_keys (
            key_id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            key_hash TEXT NOT NULL,
            scopes {b} NOT NULL,
            name TEXT NOT NULL,
            created_at {r} NOT NULL,
            revoked_at {r}
        )""",
        f"CREATE INDEX tether_api_keys_tenant ON {p}api_keys (tenant, created_at)",
        f"CREATE INDEX tether_runs_tenant_created ON {p}runs (tenant, created_at, run_id)",
    ]


def _statements(d: Dialect) -> dict[str, str]:
    p, r = d.prefix, d.real
    cols = ", ".join(COLUMNS)
    order = "ORDER BY created_at DESC, key_id DESC"
    return {
        "insert": (
            f"INSERT INTO {p}api_keys ({cols}) VALUES (?, ?, ?, ?, ?, CAST(? AS {r}), NULL) "
            "ON CONFLICT DO NOTHING RETURNING key_id"
        ),
        "get": f"SELECT {cols} FROM {p}api_keys WHERE key_id = ?",
        "list": f"SELECT {cols} FROM {p}api_keys {order}",
        "list_tenant": f"SELECT {cols} FROM {p}api_keys WHERE tenant = ? {order}",
        "revoke": (
            f"UPDATE {p}api_keys SET revoked_at = CAST(? AS {r}) "
            "WHERE key_id = ? AND revoked_at IS NULL"
        ),
        "any": f"SELECT 1 FROM {p}api_keys WHERE revoked_at IS NULL LIMIT 1",
    }


def _record(row: Sequence[Any]) -> ApiKeyRecord:
    key_id, tenant, key_hash, scopes, name, created, revoked = row
    return ApiKeyRecord(
        key_id,
        tenant,
        key_hash,
        list(loads(scopes)),
        name,
        float(created),
        None if revoked is None else float(revoked),
    )


class SqlApiKeys:
    """``ApiKeyStore`` over a ``SqlStore``'s single-statement access."""

    clock: Clock
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _key_sql(self, name: str) -> str:
        d = self._sql.dialect
        return self._sql.memoized(("api_keys", name), lambda: _statements(d)[name])

    async def put_api_key(self, record: ApiKeyRecord) -> ApiKeyRecord:
        r = record
        params = (r.key_id, r.tenant, r.key_hash, dumps(list(r.scopes)), r.name, self.clock.now())
        if not await self._fetch(self._key_sql("insert"), params):
            raise InvalidInputError(f"an API key with id {r.key_id!r} exists already")
        got = await self.get_api_key(r.key_id)
        assert got is not None
        return got

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        rows = await self._fetch(self._key_sql("get"), (key_id,))
        return _record(rows[0]) if rows else None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKeyRecord]:
        if tenant is None:
            rows = await self._fetch(self._key_sql("list"), ())
        else:
            rows = await self._fetch(self._key_sql("list_tenant"), (tenant,))
        return [_record(row) for row in rows]

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        await self._execute(self._key_sql("revoke"), (self.clock.now(), key_id))
        return await self.get_api_key(key_id)

    async def has_api_keys(self) -> bool:
        return bool(await self._fetch(self._key_sql("any"), ()))
