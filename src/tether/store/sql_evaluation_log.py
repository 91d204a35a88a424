"""The evaluation log (``tether.store.evaluation_log``) of the SQL backends: schema v17 and its
statements, written once for SQLite and PostgreSQL (mixed into ``SqlStore``).

The shadow log's parity per workflow is summed by the database (one aggregate and one
``ORDER BY distance OFFSET`` for the nearest-rank p95), read through ``(workflow, ts)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.core.errors import InvalidInputError
from tether.store.evaluation_log import (
    KPI_BATCH,
    FlagRow,
    ShadowRow,
    ShadowTotals,
    from_json,
    p95_rank,
    to_json,
)
from tether.store.kpi_totals import RunTotals, phases_sql, transitions_sql, usage_sql
from tether.store.paging import whole
from tether.store.sql_base import Dialect, Statements

SHADOW_COLUMNS = (
    "run_id", "call_key", "workflow", "ts", "live_model", "shadow_model", "live", "shadow",
    "distance", "tool_agrees", "error",
)  # fmt: skip
FLAG_COLUMNS = ("run_id", "kind", "key", "workflow", "ts", "score", "threshold", "data")


def migration(d: Dialect) -> list[str]:
    """Schema v17: ``shadow_log`` (shadow-mode model calls) and ``eval_flags`` (run flags)."""
    p, r = d.prefix, d.real
    return [
        f"""CREATE TABLE {p}shadow_log (
            run_id TEXT NOT NULL,
            call_key TEXT NOT NULL,
            workflow TEXT NOT NULL,
            ts {r} NOT NULL,
            live_model TEXT NOT NULL,
            shadow_model TEXT NOT NULL,
            live TEXT NOT NULL,
            shadow TEXT,
            distance {r},
            tool_agrees INTEGER,
            error TEXT,
            PRIMARY KEY (run_id, call_key)
        )""",
        f"CREATE INDEX tether_shadow_workflow ON {p}shadow_log (workflow, ts)",
        f"""CREATE TABLE {p}eval_flags (
            run_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            workflow TEXT NOT NULL,
            ts {r} NOT NULL,
            score {r} NOT NULL,
            threshold {r} NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, kind, key)
        )""",
        f"CREATE INDEX tether_eval_flags_workflow ON {p}eval_flags (workflow, ts)",
    ]


def _statements(d: Dialect) -> dict[str, str]:
    p, r = d.prefix, d.real
    scols, fcols = ", ".join(SHADOW_COLUMNS), ", ".join(FLAG_COLUMNS)
    since = f"AND ts >= CAST(? AS {r})"
    return {
        "put_shadow": (
            f"INSERT INTO {p}shadow_log ({scols}) VALUES (?, ?, ?, CAST(? AS {r}), ?, ?, ?, ?, "
            f"CAST(? AS {r}), CAST(? AS INTEGER), ?) ON CONFLICT (run_id, call_key) DO NOTHING "
            "RETURNING run_id"
        ),
        "put_flag": (
            f"INSERT INTO {p}eval_flags ({fcols}) VALUES (?, ?, ?, ?, CAST(? AS {r}), "
            f"CAST(? AS {r}), CAST(? AS {r}), ?) ON CONFLICT (run_id, kind, key) DO UPDATE SET "
            "workflow = excluded.workflow, ts = excluded.ts, score = excluded.score, "
            "threshold = excluded.threshold, data = excluded.data"
        ),
        "totals": (
            "SELECT COUNT(*), COUNT(error), COUNT(distance), COALESCE(SUM(distance), 0), "
            "COALESCE(MAX(distance), 0), "
            f"COUNT(CASE WHEN distance > CAST(? AS {r}) THEN 1 END), "
            "COUNT(CASE WHEN tool_agrees = 0 THEN 1 END) "
            f"FROM {p}shadow_log WHERE workflow = ? {since}"
        ),
        "nth_distance": (
            f"SELECT distance FROM {p}shadow_log WHERE workflow = ? {since} "
            "AND distance IS NOT NULL ORDER BY distance LIMIT 1 OFFSET CAST(? AS INTEGER)"
        ),
    }


def _list_shadow(d: Dialect, shape: tuple[bool, bool, bool, bool]) -> str:
    workflow, run, since, after = shape
    where = [
        c
        for c, on in (
            ("workflow = ?", workflow),
            ("run_id = ?", run),
            (f"ts >= CAST(? AS {d.real})", since),
            (f"(ts, run_id, call_key) > (CAST(? AS {d.real}), ?, ?)", after),
        )
        if on
    ]
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    return (
        f"SELECT {', '.join(SHADOW_COLUMNS)} FROM {d.prefix}shadow_log{cond} "
        "ORDER BY ts, run_id, call_key LIMIT CAST(? AS BIGINT)"
    )


def _list_flags(d: Dialect, shape: tuple[bool, bool, bool, bool]) -> str:
    run, workflow, kind, since = shape
    where = [
        c
        for c, on in (
            ("run_id = ?", run),
            ("workflow = ?", workflow),
            ("kind = ?", kind),
            (f"ts >= CAST(? AS {d.real})", since),
        )
        if on
    ]
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    return (
        f"SELECT {', '.join(FLAG_COLUMNS)} FROM {d.prefix}eval_flags{cond} "
        "ORDER BY ts, run_id, kind, key LIMIT CAST(? AS BIGINT)"
    )


def _shadow(r: Sequence[Any]) -> ShadowRow:
    run_id, key, wf, ts, live_m, shadow_m, live, shadow, dist, agrees, error = r
    return ShadowRow(
        run_id, key, wf, float(ts), live_m, shadow_m, from_json(live), from_json(shadow),
        None if dist is None else float(dist), None if agrees is None else bool(agrees), error,
    )  # fmt: skip


def _flag(r: Sequence[Any]) -> FlagRow:
    run_id, kind, key, wf, ts, score, threshold, data = r
    return FlagRow(
        run_id, kind, key, wf, float(ts), float(score), float(threshold), from_json(data)
    )


class SqlEvaluationLog:
    """``EvaluationLogStore`` over a ``SqlStore``'s single-statement access."""

    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _eval_sql(self, name: str) -> str:
        d = self._sql.dialect
        return self._sql.memoized(("evaluation", name), lambda: _statements(d)[name])

    async def put_shadow(self, row: ShadowRow) -> bool:
        r = row
        params = (
            r.run_id, r.call_key, r.workflow, r.ts, r.live_model, r.shadow_model,
            to_json(dict(r.live)), None if r.shadow is None else to_json(dict(r.shadow)),
            r.distance, None if r.tool_agrees is None else int(r.tool_agrees), r.error,
        )  # fmt: skip
        return bool(await self._fetch(self._eval_sql("put_shadow"), params))

    async def list_shadow(
        self,
        workflow: str | None = None,
        *,
        run_id: str | None = None,
        since: float | None = None,
        after: tuple[float, str, str] | None = None,
        limit: int = 100,
    ) -> list[ShadowRow]:
        limit = whole("limit", limit)
        if limit <= 0:
            return []
        d = self._sql.dialect
        shape = (workflow is not None, run_id is not None, since is not None, after is not None)
        sql = self._sql.memoized(("shadow-list", *shape), lambda: _list_shadow(d, shape))
        params: list[Any] = [v for v in (workflow, run_id, since) if v is not None]
        if after is not None:
            params += list(after)
        return [_shadow(r) for r in await self._fetch(sql, (*params, limit))]

    async def shadow_totals(
        self, workflow: str, *, threshold: float, since: float | None = None
    ) -> ShadowTotals:
        floor = since if since is not None else float("-inf")
        if floor == float("-inf"):
            floor = -1e300  # a REAL every timestamp is above, on both databases
        rows = await self._fetch(self._eval_sql("totals"), (threshold, workflow, floor))
        n, failed, compared, total, top, above, mismatches = rows[0]
        out = ShadowTotals(
            int(n), int(failed), int(compared), float(total), float(top), int(above),
            int(mismatches),
        )  # fmt: skip
        if out.compared:
            offset = p95_rank(out.compared) - 1
            nth = await self._fetch(self._eval_sql("nth_distance"), (workflow, floor, offset))
            out.p95_distance = float(nth[0][0]) if nth else None
        return out

    async def put_flag(self, row: FlagRow) -> None:
        r = row
        params = (
            r.run_id, r.kind, r.key, r.workflow, r.ts, r.score, r.threshold,
            to_json(dict(r.data)),
        )  # fmt: skip
        await self._execute(self._eval_sql("put_flag"), params)

    async def list_flags(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[FlagRow]:
        limit = whole("limit", limit)
        if limit <= 0:
            return []
        d = self._sql.dialect
        shape = (run_id is not None, workflow is not None, kind is not None, since is not None)
        sql = self._sql.memoized(("flag-list", *shape), lambda: _list_flags(d, shape))
        params = [v for v in (run_id, workflow, kind, since) if v is not None]
        return [_flag(r) for r in await self._fetch(sql, (*params, limit))]

    async def kpi_totals(self, run_ids: Sequence[str]) -> dict[str, RunTotals]:
        ids = list(dict.fromkeys(run_ids))
        if len(ids) > KPI_BATCH:
            raise InvalidInputError(f"kpi_totals takes at most {KPI_BATCH} runs, got {len(ids)}")
        if not ids:
            return {}
        d = self._sql.dialect
        n = 1 << (len(ids) - 1).bit_length()  # few statement texts: pad to a power of two
        params = (*ids, *([ids[0]] * (n - len(ids))))
        out: dict[str, RunTotals] = {}

        def get(run_id: str) -> RunTotals:
            return out.get(run_id) or out.setdefault(run_id, RunTotals(run_id))

        usage = self._sql.memoized(("kpi-usage", n), lambda: usage_sql(d.name, d.prefix, n))
        for run_id, calls, tin, tout, cost, tools, bad in await self._fetch(usage, params):
            t = get(run_id)
            t.model_calls, t.input_tokens, t.output_tokens = int(calls), int(tin), int(tout)
            t.cost, t.tool_events, t.tool_argument_errors = float(cost), int(tools), int(bad)
        trans = self._sql.memoized(("kpi-trans", n), lambda: transitions_sql(d.prefix, n))
        for run_id, esc, val, failed, first, last in await self._fetch(trans, params):
            t = get(run_id)
            t.escalations, t.validations, t.validation_failures = int(esc), int(val), int(failed)
            t.first_ts, t.last_ts = float(first), float(last)
        phases = self._sql.memoized(("kpi-phases", n), lambda: phases_sql(d.prefix, n))
        for run_id, phase, secs in await self._fetch(phases, params):
            get(run_id).phase_seconds[str(phase)] = float(secs)
        return out
