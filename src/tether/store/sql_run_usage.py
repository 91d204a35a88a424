"""``RunUsageTotals`` of the SQL backends (mixed into ``SqlStore``): one ``UNION ALL`` of the
page's ``model_call`` events and tool effects, grouped by run; both read by their primary keys
(``run_id`` first)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from tether.store.run_usage import RunUsage, row_to_usage, runs_usage_sql
from tether.store.sql_base import Statements

MAX_IDS = 500
"""Run ids per statement (a runs page holds at most 500)."""


class SqlRunUsage:
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    async def runs_usage(self, run_ids: Sequence[str]) -> dict[str, RunUsage]:
        ids = list(dict.fromkeys(run_ids))
        out: dict[str, RunUsage] = {}
        d = self._sql.dialect
        for i in range(0, len(ids), MAX_IDS):
            chunk = ids[i : i + MAX_IDS]
            n = 1 << (len(chunk) - 1).bit_length()  # few statement texts: pad to a power of 2
            chunk += [chunk[0]] * (n - len(chunk))
            sql = self._sql.memoized(
                ("runs_usage", n), partial(runs_usage_sql, d.name, d.prefix, n)
            )
            out.update(row_to_usage(r) for r in await self._fetch(sql, (*chunk, *chunk)))
        return out
