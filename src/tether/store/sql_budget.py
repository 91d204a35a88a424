"""Budget ledgers (``tether.store.budget``) of the SQL backends: schema v11 and its
statements, written once for SQLite and PostgreSQL (mixed into ``SqlStore``).

A ledger is one row with three columns per counter (``lim_``, ``used_``, ``rsv_``). A
reservation is one ``UPDATE ... WHERE <every positive amount fits> RETURNING``: PostgreSQL
re-checks the condition on the row it locked (a concurrent reservation that committed first is
seen), SQLite runs one writer at a time, so the check and the write are one atomic step on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.store.budget import COUNTERS, LIMITS, Flag, Fold, Ledger
from tether.store.sql_base import Dialect, Statements

HEAD = ("key", "started_at", "evented", "noted", "created_at", "updated_at")
COLUMNS = (
    *HEAD,
    *(f"lim_{d}" for d in LIMITS),
    *(f"used_{d}" for d in COUNTERS),
    *(f"rsv_{d}" for d in COUNTERS),
)


def migration(d: Dialect) -> list[str]:
    """Schema v11: ``budget_ledgers`` (run-tree budget envelopes and tenant quota windows)."""
    p, r = d.prefix, d.real
    limits = ",\n".join(f"lim_{x} {r}" for x in LIMITS)
    counters = ",\n".join(
        f"used_{x} {r} NOT NULL DEFAULT 0, rsv_{x} {r} NOT NULL DEFAULT 0" for x in COUNTERS
    )
    return [
        f"""CREATE TABLE {p}budget_ledgers (
            key TEXT PRIMARY KEY,
            started_at {r} NOT NULL,
            evented TEXT NOT NULL DEFAULT ',',
            noted TEXT NOT NULL DEFAULT ',',
            created_at {r} NOT NULL,
            updated_at {r} NOT NULL,
            {limits},
            {counters}
        )""",
    ]


def _statements(d: Dialect) -> dict[str, str]:
    p, r = d.prefix, d.real
    t, cols = f"{p}budget_ledgers", ", ".join(COLUMNS)
    lims = ", ".join(f"lim_{x}" for x in LIMITS)
    lim_marks = ", ".join(f"CAST(? AS {r})" for _ in LIMITS)
    fits = " AND ".join(
        f"(CAST(? AS {r}) <= 0 OR lim_{x} IS NULL "
        f"OR used_{x} + rsv_{x} + CAST(? AS {r}) <= lim_{x})"
        for x in COUNTERS
    )
    add = ", ".join(f"rsv_{x} = rsv_{x} + CAST(? AS {r})" for x in COUNTERS)
    use = ", ".join(f"used_{x} = used_{x} + CAST(? AS {r})" for x in COUNTERS)
    settle = ", ".join(
        f"rsv_{x} = CASE WHEN rsv_{x} - CAST(? AS {r}) > 0 "
        f"THEN rsv_{x} - CAST(? AS {r}) ELSE 0 END, "
        f"used_{x} = used_{x} + CAST(? AS {r})"
        for x in COUNTERS
    )
    stamp = f"updated_at = CAST(? AS {r})"
    # with a settle folded in: each counter's reserve after releasing the settle's hold
    left = {
        x: f"CASE WHEN rsv_{x} - CAST(? AS {r}) > 0 THEN rsv_{x} - CAST(? AS {r}) ELSE 0 END"
        for x in COUNTERS
    }
    fits_folded = " AND ".join(
        f"(CAST(? AS {r}) <= 0 OR lim_{x} IS NULL "
        f"OR used_{x} + CAST(? AS {r}) + {left[x]} + CAST(? AS {r}) <= lim_{x})"
        for x in COUNTERS
    )
    add_folded = ", ".join(
        f"rsv_{x} = {left[x]} + CAST(? AS {r}), used_{x} = used_{x} + CAST(? AS {r})"
        for x in COUNTERS
    )
    return {
        "open": (
            f"INSERT INTO {t} (key, started_at, created_at, updated_at, {lims}) VALUES "
            f"(?, CAST(? AS {r}), CAST(? AS {r}), CAST(? AS {r}), {lim_marks}) "
            "ON CONFLICT (key) DO NOTHING RETURNING key"
        ),
        "get": f"SELECT {cols} FROM {t} WHERE key = ?",
        "reserve": f"UPDATE {t} SET {add}, {stamp} WHERE key = ? AND {fits} RETURNING {cols}",
        "settle": f"UPDATE {t} SET {settle}, {stamp} WHERE key = ? RETURNING {cols}",
        "charge": f"UPDATE {t} SET {use}, {stamp} WHERE key = ? AND {fits} RETURNING {cols}",
        "folded": (
            f"UPDATE {t} SET {add_folded}, {stamp} WHERE key = ? AND {fits_folded} RETURNING {cols}"
        ),
        "mark_evented": (
            f"UPDATE {t} SET evented = evented || ? || ',' WHERE key = ? "
            "AND evented NOT LIKE ? RETURNING key"
        ),
        "mark_noted": (
            f"UPDATE {t} SET noted = noted || ? || ',' WHERE key = ? "
            "AND noted NOT LIKE ? RETURNING key"
        ),
        "list": f"SELECT {cols} FROM {t} WHERE key LIKE ? ESCAPE '\\' ORDER BY key",
        "delete": f"DELETE FROM {t} WHERE key LIKE ? ESCAPE '\\' AND updated_at < CAST(? AS {r})",
    }


def _like(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _ledger(row: Sequence[Any]) -> Ledger:
    key, started, evented, noted, created, updated = row[: len(HEAD)]
    rest = row[len(HEAD) :]
    lims, rest = rest[: len(LIMITS)], rest[len(LIMITS) :]
    used, rsv = rest[: len(COUNTERS)], rest[len(COUNTERS) :]
    return Ledger(
        key,
        {d: float(v) for d, v in zip(LIMITS, lims, strict=True) if v is not None},
        {d: float(v) for d, v in zip(COUNTERS, used, strict=True)},
        {d: float(v) for d, v in zip(COUNTERS, rsv, strict=True)},
        float(started),
        [x for x in str(evented).split(",") if x],
        [x for x in str(noted).split(",") if x],
        float(created),
        float(updated),
    )


class SqlBudget:
    """``BudgetStore`` over a ``SqlStore``'s single-statement access."""

    clock: Clock
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    def _budget_sql(self, name: str) -> str:
        d = self._sql.dialect
        return self._sql.memoized(("budget", name), lambda: _statements(d)[name])

    async def open_ledger(
        self, key: str, limits: Mapping[str, float], started_at: float
    ) -> tuple[Ledger, bool]:
        now = self.clock.now()
        params = (key, started_at, now, now, *(limits.get(d) for d in LIMITS))
        created = bool(await self._fetch(self._budget_sql("open"), params))
        row = await self.get_ledger(key)
        assert row is not None  # ledgers are deleted only when old (delete_ledgers)
        return row, created

    async def get_ledger(self, key: str) -> Ledger | None:
        rows = await self._fetch(self._budget_sql("get"), (key,))
        return _ledger(rows[0]) if rows else None

    async def reserve_ledger(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None = None
    ) -> Ledger | None:
        if fold is not None:
            return await self._folded(key, amounts, {}, fold)
        adds = [float(amounts.get(d, 0.0)) for d in COUNTERS]
        fits = [a for x in adds for a in (x, x)]
        rows = await self._fetch(self._budget_sql("reserve"), (*adds, self.clock.now(), key, *fits))
        return _ledger(rows[0]) if rows else None

    async def _folded(
        self,
        key: str,
        reserve: Mapping[str, float],
        charge: Mapping[str, float],
        fold: Fold,
    ) -> Ledger | None:
        """One statement: settle ``fold``, then reserve or charge if it fits (see the
        ``folded`` statement); ``reserve`` and ``charge`` hold the amounts of each."""
        release, use = fold
        sets: list[float] = []
        fits: list[float] = []
        for d in COUNTERS:
            h, u = float(release.get(d, 0.0)), float(use.get(d, 0.0))
            r, c = float(reserve.get(d, 0.0)), float(charge.get(d, 0.0))
            sets += [h, h, r, u + c]
            fits += [r + c, u + c, h, h, r]
        params = (*sets, self.clock.now(), key, *fits)
        rows = await self._fetch(self._budget_sql("folded"), params)
        return _ledger(rows[0]) if rows else None

    async def charge_ledger(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None = None
    ) -> Ledger | None:
        if fold is not None:
            return await self._folded(key, {}, amounts, fold)
        adds = [float(amounts.get(d, 0.0)) for d in COUNTERS]
        fits = [a for x in adds for a in (x, x)]
        rows = await self._fetch(self._budget_sql("charge"), (*adds, self.clock.now(), key, *fits))
        return _ledger(rows[0]) if rows else None

    async def settle_ledger(
        self, key: str, reserved: Mapping[str, float], used: Mapping[str, float]
    ) -> Ledger | None:
        params: list[Any] = []
        for d in COUNTERS:
            held = float(reserved.get(d, 0.0))
            params += [held, held, float(used.get(d, 0.0))]
        rows = await self._fetch(self._budget_sql("settle"), (*params, self.clock.now(), key))
        return _ledger(rows[0]) if rows else None

    async def set_ledger_limits(
        self, key: str, limits: Mapping[str, float | None]
    ) -> Ledger | None:
        dims = [d for d in LIMITS if d in limits]
        if dims:
            r = self._sql.dialect.real
            sets = ", ".join(f"lim_{d} = CAST(? AS {r})" for d in dims)
            sql = self._sql.memoized(
                ("budget", "limits", *dims),
                lambda: (
                    f"UPDATE {self._sql.dialect.prefix}budget_ledgers SET {sets}, "
                    f"updated_at = CAST(? AS {r}) WHERE key = ?"
                ),
            )
            await self._execute(sql, (*(limits[d] for d in dims), self.clock.now(), key))
        return await self.get_ledger(key)

    async def mark_ledger(self, key: str, flag: Flag, dimension: str) -> bool:
        sql = self._budget_sql("mark_evented" if flag == "evented" else "mark_noted")
        return bool(await self._fetch(sql, (dimension, key, f"%,{dimension},%")))

    async def list_ledgers(self, prefix: str = "") -> list[Ledger]:
        return [_ledger(r) for r in await self._fetch(self._budget_sql("list"), (_like(prefix),))]

    async def delete_ledgers(self, prefix: str, updated_before: float) -> int:
        return await self._execute(self._budget_sql("delete"), (_like(prefix), updated_before))
