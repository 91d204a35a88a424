"""``RunCounts`` of the SQL backends (mixed into ``SqlStore``): a ``GROUP BY status`` served
by the ``(status, ...)`` and ``(tenant, status)`` indexes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.store.sql_base import Statements


class SqlRunCounts:
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    async def count_runs(self, *, tenant: str | None = None) -> dict[str, int]:
        p = self._sql.dialect.prefix
        where = " WHERE tenant = ?" if tenant is not None else ""
        sql = self._sql.memoized(
            ("count_runs", tenant is not None),
            lambda: f"SELECT status, COUNT(*) FROM {p}runs{where} GROUP BY status",
        )
        rows = await self._fetch(sql, (tenant,) if tenant is not None else ())
        return {str(status): int(n) for status, n in rows}
