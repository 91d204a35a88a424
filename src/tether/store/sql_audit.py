"""The audit log and message nonces (``tether.store.audit``) of the SQL backends: schema v13
and its statements, written once for SQLite and PostgreSQL (mixed into ``SqlStore``).

An append is one ``INSERT ... ON CONFLICT (tenant, seq) DO NOTHING`` (its row count says whether
it took the position): the primary key is what serialises writers of one chain across
processes (a loser re-reads the head and retries), with no transaction held around the hash
computation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.store.audit import AuditRow
from tether.store.paging import whole
from tether.store.sql_base import Dialect, Statements

AUDIT_COLUMNS = ("tenant", "seq", "ts", "run_id", "kind", "data", "prev_hash", "hash")


def migration(d: Dialect) -> list[str]:
    """Schema v13: ``audit_log`` (one hash chain per tenant) and ``message_nonces``."""
    p, r, i = d.prefix, d.real, d.bigint
    return [
        f"""CREATE TABLE {p}audit_log (
            tenant TEXT NOT NULL,
            seq {i} NOT NULL,
            ts {r} NOT NULL,
            run_id TEXT,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (tenant, seq)
        )""",
        f"CREATE INDEX tether_audit_run ON {p}audit_log (run_id)",
        f"""CREATE TABLE {p}message_nonces (
            nonce TEXT PRIMARY KEY,
            consumer TEXT NOT NULL,
            sender TEXT NOT NULL,
            seen_at {r} NOT NULL
        )""",
    ]


def _statements(d: Dialect) -> dict[str, str]:
    p, r, i = d.prefix, d.real, d.bigint
    cols = ", ".join(AUDIT_COLUMNS)
    return {
        "append": (
            f"INSERT INTO {p}audit_log ({cols}) VALUES (?, CAST(? AS {i}), CAST(? AS {r}), "
            "?, ?, ?, ?, ?) ON CONFLICT (tenant, seq) DO NOTHING"
        ),
        "head": f"SELECT {cols} FROM {p}audit_log WHERE tenant = ? ORDER BY seq DESC LIMIT 1",
        "tenants": f"SELECT DISTINCT tenant FROM {p}audit_log ORDER BY tenant",
        "claim_nonce": (
            f"INSERT INTO {p}message_nonces (nonce, consumer, sender, seen_at) "
            f"VALUES (?, ?, ?, CAST(? AS {r})) ON CONFLICT (nonce) DO NOTHING"
        ),
        "nonce_consumer": f"SELECT consumer FROM {p}message_nonces WHERE nonce = ?",
    }


def _list(d: Dialect, tenant: bool, run: bool, since: bool, after: bool) -> str:
    where = []
    if tenant:
        where.append("tenant = ?")
    if run:
        where.append("run_id = ?")
    if since:
        where.append(f"ts >= CAST(? AS {d.real})")
    if after:
        where.append(f"(tenant, seq) > (?, CAST(? AS {d.bigint}))")
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    return (
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM {d.prefix}audit_log{cond} "
        "ORDER BY tenant, seq LIMIT CAST(? AS BIGINT)"
    )


def _row(r: Sequence[Any]) -> AuditRow:
    """A row as stored. A value SQLite's loose typing let someone write in place of a number
    (``seq = 'x'``, ``ts = 'garbage'``) is read as what no record holds (seq -1, ts NaN), so
    verifying the chain names that record as changed instead of failing on it."""
    tenant, seq, ts, run_id, kind, data, prev, digest = r
    return AuditRow(
        str(tenant),
        _seq(seq),
        _ts(ts),
        None if run_id is None else str(run_id),
        str(kind),
        str(data),
        str(prev),
        str(digest),
    )


def _seq(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return -1


def _ts(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


class SqlAudit:
    """``AuditStore`` over a ``SqlStore``'s single-statement access."""

    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _audit_sql(self, name: str) -> str:
        d = self._sql.dialect
        return self._sql.memoized(("audit", name), lambda: _statements(d)[name])

    async def append_audit(self, row: AuditRow) -> bool:
        r = row
        params = (r.tenant, r.seq, r.ts, r.run_id, r.kind, r.data_json, r.prev_hash, r.hash)
        return await self._execute(self._audit_sql("append"), params) > 0

    async def audit_head(self, tenant: str) -> AuditRow | None:
        rows = await self._fetch(self._audit_sql("head"), (tenant,))
        return _row(rows[0]) if rows else None

    async def list_audit(
        self,
        tenant: str | None = None,
        *,
        run_id: str | None = None,
        since: float | None = None,
        after: tuple[str, int] | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        limit = whole("limit", limit)
        if limit <= 0:
            return []
        d = self._sql.dialect
        shape = (tenant is not None, run_id is not None, since is not None, after is not None)
        sql = self._sql.memoized(("audit-list", *shape), lambda: _list(d, *shape))
        params: list[Any] = [v for v in (tenant, run_id, since) if v is not None]
        if after is not None:
            params += [after[0], after[1]]
        rows = await self._fetch(sql, (*params, limit))
        return [_row(r) for r in rows]

    async def audit_tenants(self) -> list[str]:
        return [r[0] for r in await self._fetch(self._audit_sql("tenants"), ())]

    async def claim_message_nonce(self, nonce: str, consumer: str, sender: str, at: float) -> str:
        await self._execute(self._audit_sql("claim_nonce"), (nonce, consumer, sender, at))
        rows = await self._fetch(self._audit_sql("nonce_consumer"), (nonce,))
        return str(rows[0][0]) if rows else consumer
