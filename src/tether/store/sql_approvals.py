"""Approval requests and approvers (``tether.store.approvals``) of the SQL backends: schema v12
(v22: approvers keyed by tenant) and its statements, written once for SQLite and PostgreSQL
(mixed into ``SqlStore``).

One pending request per intent is a partial unique index; ``create_approval`` is an
``INSERT ... ON CONFLICT DO NOTHING`` that falls back to reading the pending one. Every change
is a compare-and-set ``UPDATE ... WHERE version = ?``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.core.errors import ApprovalNotFoundError
from tether.core.serde import dumps, loads
from tether.store.approvals import PENDING, ApprovalRecord, Approver, key_tenant, tenant_key
from tether.store.paging import whole
from tether.store.sql_base import Dialect, Statements

COLUMNS = (
    "approval_id",
    "run_id",
    "intent_hash",
    "status",
    "deadline_at",
    "used_at",
    "version",
    "created_at",
    "updated_at",
    "body",
)
APPROVER_COLUMNS = ("approver_id", "role", "public_key", "created_at", "updated_at", "tenant")


def migration(d: Dialect) -> list[str]:
    """Schema v12: ``approvals`` (requests, one pending per intent) and ``approvers``."""
    p, b, r, i = d.prefix, d.blob, d.real, d.bigint
    return [
        f"""CREATE TABLE {p}approvals (
            approval_id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            intent_hash TEXT NOT NULL,
            status TEXT NOT NULL,
            deadline_at {r},
            used_at {r},
            version {i} NOT NULL DEFAULT 0,
            created_at {r} NOT NULL,
            updated_at {r} NOT NULL,
            body {b} NOT NULL
        )""",
        f"CREATE UNIQUE INDEX tether_approvals_open ON {p}approvals (intent_hash) "
        "WHERE status = 'pending'",
        f"CREATE INDEX tether_approvals_intent ON {p}approvals (intent_hash, created_at)",
        f"CREATE INDEX tether_approvals_run ON {p}approvals (run_id, created_at)",
        f"CREATE INDEX tether_approvals_status ON {p}approvals (status, created_at)",
        f"""CREATE TABLE {p}approvers (
            approver_id TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            public_key TEXT NOT NULL,
            created_at {r} NOT NULL,
            updated_at {r} NOT NULL
        )""",
    ]


def tenant_migration(d: Dialect) -> list[str]:
    """Schema v22: approvers are keyed by ``(tenant, approver_id)`` (``''``: no tenant), so
    each tenant registers its own, under ids another tenant may use too; the approvers of
    older databases become approvers of runs without a tenant.

    The table is rebuilt (SQLite cannot change a primary key in place), under its old name."""
    p = d.prefix
    bare = p.rsplit(".", 1)[-1]  # RENAME TO takes a name without its schema
    r = d.real
    old = "approver_id, role, public_key, created_at, updated_at"
    return [
        f"""CREATE TABLE {p}approvers_v22 (
            tenant TEXT NOT NULL,
            approver_id TEXT NOT NULL,
            role TEXT NOT NULL,
            public_key TEXT NOT NULL,
            created_at {r} NOT NULL,
            updated_at {r} NOT NULL,
            PRIMARY KEY (tenant, approver_id)
        )""",
        f"INSERT INTO {p}approvers_v22 (tenant, {old}) SELECT '', {old} FROM {p}approvers",
        f"DROP TABLE {p}approvers",
        f"ALTER TABLE {p}approvers_v22 RENAME TO {bare}approvers",
    ]


def _condition(p: str, name: str) -> str:
    if name == "tenant":
        return f"run_id IN (SELECT run_id FROM {p}runs WHERE tenant = ?)"
    if name == "before":  # newest first: the page after the cursor's request
        return (
            f"(created_at, approval_id) < "
            f"(SELECT created_at, approval_id FROM {p}approvals WHERE approval_id = ?)"
        )
    return f"{name} = ?"


def _statements(d: Dialect, filters: tuple[str, ...] = ()) -> dict[str, str]:
    p, r, i = d.prefix, d.real, d.bigint
    cols, acols = ", ".join(COLUMNS), ", ".join(APPROVER_COLUMNS)
    where = " AND ".join(_condition(p, f) for f in filters)
    return {
        "insert": (
            f"INSERT INTO {p}approvals ({cols}) VALUES (?, ?, ?, '{PENDING}', CAST(? AS {r}), "
            f"NULL, 0, CAST(? AS {r}), CAST(? AS {r}), ?) ON CONFLICT DO NOTHING "
            "RETURNING approval_id"
        ),
        "get": f"SELECT {cols} FROM {p}approvals WHERE approval_id = ?",
        "open": f"SELECT {cols} FROM {p}approvals WHERE intent_hash = ? AND status = '{PENDING}'",
        "list": (
            f"SELECT {cols} FROM {p}approvals{' WHERE ' + where if where else ''} "
            "ORDER BY created_at DESC, approval_id DESC LIMIT CAST(? AS BIGINT)"
        ),
        "update": (
            f"UPDATE {p}approvals SET status = ?, deadline_at = CAST(? AS {r}), "
            f"used_at = CAST(? AS {r}), version = version + 1, updated_at = CAST(? AS {r}), "
            f"body = ? WHERE approval_id = ? AND version = CAST(? AS {i})"
        ),
        "put_approver": (
            f"INSERT INTO {p}approvers ({acols}) VALUES (?, ?, ?, CAST(? AS {r}), "
            f"CAST(? AS {r}), ?) ON CONFLICT (tenant, approver_id) DO UPDATE SET "
            "role = excluded.role, "
            "public_key = excluded.public_key, updated_at = excluded.updated_at "
            f"RETURNING {acols}"
        ),
        "get_approver": (f"SELECT {acols} FROM {p}approvers WHERE approver_id = ? AND tenant = ?"),
        "list_approvers": f"SELECT {acols} FROM {p}approvers ORDER BY approver_id, tenant",
        "list_tenant_approvers": (
            f"SELECT {acols} FROM {p}approvers WHERE tenant = ? ORDER BY approver_id"
        ),
    }


def _body(rec: ApprovalRecord) -> bytes:
    return dumps(
        {
            "intent": rec.intent,
            "reason": rec.reason,
            "rule": rec.rule,
            "decisions": rec.decisions,
            "history": rec.history,
            "level": rec.level,
        }
    )


def _record(row: Sequence[Any]) -> ApprovalRecord:
    aid, run_id, ih, status, deadline, used, version, created, updated, body = row
    b = loads(body)
    return ApprovalRecord(
        aid,
        run_id,
        ih,
        b["intent"],
        b["reason"],
        b["rule"],
        status,
        b["decisions"],
        b["history"],
        None if deadline is None else float(deadline),
        int(b["level"]),
        None if used is None else float(used),
        float(created),
        float(updated),
        int(version),
    )


def _approver(row: Sequence[Any]) -> Approver:
    aid, role, key, created, updated, tenant = row
    return Approver(aid, role, key, float(created), float(updated), key_tenant(tenant))


class SqlApprovals:
    """``ApprovalStore`` over a ``SqlStore``'s single-statement access."""

    clock: Clock
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _approval_sql(self, name: str, filters: tuple[str, ...] = ()) -> str:
        d = self._sql.dialect
        key = ("approvals", name, filters)
        return self._sql.memoized(key, lambda: _statements(d, filters)[name])

    async def create_approval(self, record: ApprovalRecord) -> tuple[ApprovalRecord, bool]:
        now, r = self.clock.now(), record
        params = (r.approval_id, r.run_id, r.intent_hash, r.deadline_at, now, now, _body(r))
        if await self._fetch(self._approval_sql("insert"), params):
            got = await self.get_approval(r.approval_id)
            assert got is not None
            return got, True
        rows = await self._fetch(self._approval_sql("open"), (r.intent_hash,))
        if not rows:  # the id existed (a retried insert): that row
            rows = await self._fetch(self._approval_sql("get"), (r.approval_id,))
        return _record(rows[0]), False

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        rows = await self._fetch(self._approval_sql("get"), (approval_id,))
        return _record(rows[0]) if rows else None

    async def list_approvals(
        self,
        *,
        status: str | None = None,
        run_id: str | None = None,
        intent_hash: str | None = None,
        limit: int = 100,
        tenant: str | None = None,
        before: str | None = None,
    ) -> list[ApprovalRecord]:
        if before is not None:  # a cursor this listing could not show is no cursor of it
            mine = ("approval_id", "tenant") if tenant is not None else ("approval_id",)
            seek: tuple[Any, ...] = (before, tenant, 1) if tenant is not None else (before, 1)
            if not await self._fetch(self._approval_sql("list", mine), seek):
                raise ApprovalNotFoundError(before)
        given = {
            "status": status,
            "run_id": run_id,
            "intent_hash": intent_hash,
            "tenant": tenant,
            "before": before,
        }
        filters = tuple(k for k, v in given.items() if v is not None)
        params = (*(given[k] for k in filters), max(whole("limit", limit), 0))
        rows = await self._fetch(self._approval_sql("list", filters), params)
        return [_record(row) for row in rows]

    async def update_approval(self, record: ApprovalRecord) -> bool:
        r = record
        params = (
            r.status,
            r.deadline_at,
            r.used_at,
            self.clock.now(),
            _body(r),
            r.approval_id,
            r.version,
        )
        return await self._execute(self._approval_sql("update"), params) > 0

    async def put_approver(self, approver: Approver) -> Approver:
        a, now = approver, self.clock.now()
        params = (a.approver_id, a.role, a.public_key, now, now, tenant_key(a.tenant))
        (row,) = await self._fetch(self._approval_sql("put_approver"), params)
        return _approver(row)

    async def get_approver(self, approver_id: str, tenant: str | None = None) -> Approver | None:
        params = (approver_id, tenant_key(tenant))
        rows = await self._fetch(self._approval_sql("get_approver"), params)
        return _approver(rows[0]) if rows else None

    async def list_approvers(self, tenant: str | None = None) -> list[Approver]:
        if tenant is None:
            rows = await self._fetch(self._approval_sql("list_approvers"), ())
        else:
            sql = self._approval_sql("list_tenant_approvers")
            rows = await self._fetch(sql, (tenant_key(tenant),))
        return [_approver(row) for row in rows]
