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
    return {
        "open": (
            f"INSERT INTO {t} (key, started_at, created_at, updated_at, {lims}) VALUES "
            f"(?, CAST(? AS {r}), CAST(? AS {r}), CAST(? AS {r}), {lim_marks}) "
            "ON CONFLICT (key) DO NOTHING RETURNING key"
        ),
        "get": f"SELECT {cols} FROM {t} WHERE key = ?",
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


Move = tuple[str, bool, bool, bool]
"""A counter a write moves: its name, and whether it releases a hold, reserves, uses."""


Returned = bool | tuple[str, ...]
"""What a ledger write reads back: nothing (False), the whole row (True, ``COLUMNS``), or the
lean row of a ``take_ledger`` expecting these dimensions limited (``_lean_columns``)."""


def _lean_columns(dims: tuple[str, ...]) -> list[str]:
    """``started_at``, ``evented``, ``noted``; the first limit set among the dimensions not in
    ``dims`` (NULL: none, the lean row is all there is to know); per dimension of ``dims`` its
    limit; per counter of ``dims`` what is used and reserved."""
    others = [f"lim_{x}" for x in LIMITS if x not in dims]
    extra = (
        "NULL"
        if not others
        else others[0]
        if len(others) == 1
        else (f"COALESCE({', '.join(others)})")
    )
    counters = [c for x in dims if x in COUNTERS for c in (f"used_{x}", f"rsv_{x}")]
    return ["started_at", "evented", "noted", extra, *(f"lim_{x}" for x in dims), *counters]


def _calm(d: Dialect, moves: tuple[Move, ...], calm: tuple[str, ...]) -> str:
    """The conditions of ``charge_calm``: no limit outside ``calm`` (counters), and each
    counter of ``calm``, as the write leaves it, short of the soft fraction of its limit (or
    that limit not positive, or its soft limit announced: the pattern is in the text, as a
    parameter it would have SQLite prepare the statement again on every run). Parameters, in
    order: per counter of ``calm`` the amount used (if moved), the fraction."""
    r = d.real
    others = [f"lim_{x}" for x in LIMITS if x not in calm]
    out = [f" AND COALESCE({', '.join(others)}) IS NULL" if len(others) > 1 else ""]
    if len(others) == 1:
        out[0] = f" AND {others[0]} IS NULL"
    used = {x for x, _, _, u in moves if u}
    for x in calm:
        add = f" + CAST(? AS {r})" if x in used else ""
        out.append(
            f" AND (lim_{x} IS NULL OR used_{x}{add} < CAST(? AS {r}) * lim_{x} "
            f"OR lim_{x} <= 0 OR evented LIKE '%,{x},%')"
        )
    return "".join(out)


def _write(
    d: Dialect,
    moves: tuple[Move, ...],
    checked: tuple[str, ...],
    row: Returned,
    calm: tuple[str, ...] | None = None,
) -> str:
    """The one statement of every ledger write, over just the counters it ``moves`` (one left
    out keeps its value, and cannot fail the check: nothing is taken from it): per counter,
    release a hold (never below 0), then reserve and use; and, for each ``checked`` counter (a
    positive amount taken), the condition that the row as that leaves it stays within the
    limit. Parameters, in order: per moved counter the hold (twice, if released), the amount
    reserved (if any), the amount used (if any); the time; the key; per checked counter the
    amount used (if any), the hold (twice, if released), the amount reserved (if any).

    A reservation, a charge, a settle, and either with a settle folded in are all this
    statement; one that names only what it moves (a model call's five counters, a tool call's
    two, a quota's two) carries a fraction of the parameters and CASE expressions. ``row``:
    it returns the row after it, or its lean part (``Returned``; without, only a row count
    says whether it fit)."""
    r = d.real
    sets: list[str] = []
    fits: list[str] = []
    for x, held, reserved, used in moves:
        left = (
            f"CASE WHEN rsv_{x} - CAST(? AS {r}) > 0 THEN rsv_{x} - CAST(? AS {r}) ELSE 0 END"
            if held
            else f"rsv_{x}"
        )
        add = f" + CAST(? AS {r})"
        if held or reserved:
            sets.append(f"rsv_{x} = {left}{add if reserved else ''}")
        if used:
            sets.append(f"used_{x} = used_{x}{add}")
        if x in checked:
            fits.append(
                f" AND (lim_{x} IS NULL OR used_{x}{add if used else ''} + {left}"
                f"{add if reserved else ''} <= lim_{x})"
            )
    sets.append(f"updated_at = CAST(? AS {r})")
    returned = COLUMNS if row is True else () if row is False else _lean_columns(row)
    returning = f" RETURNING {', '.join(returned)}" if returned else ""
    quiet = "" if calm is None else _calm(d, moves, calm)
    return (
        f"UPDATE {d.prefix}budget_ledgers SET {', '.join(sets)} WHERE key = ?{''.join(fits)}"
        f"{quiet}{returning}"
    )


_NO_FOLD: Fold = ({}, {})


def _like(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


_LIMS = slice(len(HEAD), len(HEAD) + len(LIMITS))
_USED = slice(_LIMS.stop, _LIMS.stop + len(COUNTERS))
_RSV = slice(_USED.stop, _USED.stop + len(COUNTERS))


def _ledger(row: Sequence[Any]) -> Ledger:
    """A row of ``COLUMNS`` (read back after every write: kept lean)."""
    key, started, evented, noted, created, updated = row[: len(HEAD)]
    return Ledger(
        key,
        {d: float(v) for d, v in zip(LIMITS, row[_LIMS], strict=True) if v is not None},
        dict(zip(COUNTERS, map(float, row[_USED]), strict=True)),
        dict(zip(COUNTERS, map(float, row[_RSV]), strict=True)),
        float(started),
        _flags(evented),
        _flags(noted),
        float(created),
        float(updated),
    )


def _lean(key: str, dims: tuple[str, ...], counted: tuple[str, ...], row: Sequence[Any]) -> Ledger:
    """A row of ``_lean_columns(dims)`` (all there is to know only while ``row[3]`` is NULL:
    no dimension outside ``dims`` is limited); ``counted``: the counters of ``dims``. Its
    numbers are floats, as ``_ledger``'s (SQLite's RETURNING may hand back an integer)."""
    n = 4 + len(dims)
    values = row[n:]
    evented, noted = row[1], row[2]
    return Ledger(
        key,
        {x: float(v) for x, v in zip(dims, row[4:n], strict=True) if v is not None},
        dict(zip(counted, map(float, values[0::2]), strict=True)),
        dict(zip(counted, map(float, values[1::2]), strict=True)),
        float(row[0]),
        [] if evented == "," else _flags(evented),
        [] if noted == "," else _flags(noted),
    )


_KNOWN: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _known(limited: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The dimensions of ``limited`` that a ledger has (no other name reaches a statement),
    and the counters among them; memoized (a budget asks with the same few)."""
    found = _KNOWN.get(limited)
    if found is None:
        if len(_KNOWN) >= 256:
            _KNOWN.clear()
        dims = tuple(dict.fromkeys(x for x in limited if x in LIMITS))
        found = _KNOWN[limited] = (dims, tuple(x for x in dims if x in COUNTERS))
    return found


def _flags(text: Any) -> list[str]:
    """``evented``/``noted``: ``,a,b,`` (``,`` for none)."""
    return [] if text == "," else [x for x in str(text).split(",") if x]


def _one_side(
    amounts: Mapping[str, float], exact: bool
) -> tuple[list[Move], list[float], list[str], list[float]]:
    """A write of one side with no settle folded in: reserve ``amounts``, or charge them
    (``exact``). The counters it moves, their amounts (``_write``'s SET parameters), the
    counters it checks for fit and the amounts they are checked with."""
    moves: list[Move] = []
    sets: list[float] = []
    checked: list[str] = []
    fits: list[float] = []
    for d in COUNTERS:
        v = amounts.get(d)
        if not v:
            continue
        v = float(v)
        moves.append((d, False, not exact, exact))
        sets.append(v)
        if v > 0:
            checked.append(d)
            fits.append(v)
    return moves, sets, checked, fits


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
        return await self._write_ledger(key, amounts, {}, fold or _NO_FOLD)

    async def charge_ledger(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None = None
    ) -> Ledger | None:
        return await self._write_ledger(key, {}, amounts, fold or _NO_FOLD)

    async def settle_ledger(
        self, key: str, reserved: Mapping[str, float], used: Mapping[str, float]
    ) -> Ledger | None:
        return await self._write_ledger(key, {}, {}, (reserved, used))

    async def fit_ledger(
        self,
        key: str,
        amounts: Mapping[str, float],
        fold: Fold | None = None,
        *,
        exact: bool = False,
    ) -> bool:
        reserve, charge = ({}, amounts) if exact else (amounts, {})
        sql, params = self._ledger_write(key, reserve, charge, fold or _NO_FOLD, False)
        return bool(await self._execute(sql, params))

    async def take_ledger(
        self,
        key: str,
        amounts: Mapping[str, float],
        fold: Fold | None = None,
        *,
        exact: bool = False,
        limited: tuple[str, ...] = (),
    ) -> Ledger | None:
        reserve, charge = ({}, amounts) if exact else (amounts, {})
        dims, counted = _known(limited)
        sql, params = self._ledger_write(key, reserve, charge, fold or _NO_FOLD, dims)
        rows = await self._fetch(sql, params)
        if not rows:
            return None
        row = rows[0]
        lean = _lean(key, dims, counted, row)
        if row[3] is None:
            return lean
        # limited beyond ``limited`` (a limit set since): the whole row, as it is now
        return await self.get_ledger(key) or lean

    async def charge_calm(
        self, key: str, amounts: Mapping[str, float], *, limited: tuple[str, ...], soft: float
    ) -> bool:
        dims, counted = _known(limited)
        if len(counted) != len(dims):  # a limit that is no counter (wall_seconds, depth)
            return False
        moves, sets, checked, fits = _one_side(amounts, exact=True)
        quiet: list[float] = []
        for d in counted:
            v = amounts.get(d)
            if v:
                quiet.append(float(v))
            quiet.append(soft)
        sql = self._write_sql(moves, checked, False, counted)
        return bool(await self._execute(sql, (*sets, self.clock.now(), key, *fits, *quiet)))

    async def _write_ledger(
        self,
        key: str,
        reserve: Mapping[str, float],
        charge: Mapping[str, float],
        fold: Fold,
    ) -> Ledger | None:
        sql, params = self._ledger_write(key, reserve, charge, fold, True)
        rows = await self._fetch(sql, params)
        return _ledger(rows[0]) if rows else None

    def _ledger_write(
        self,
        key: str,
        reserve: Mapping[str, float],
        charge: Mapping[str, float],
        fold: Fold,
        row: Returned,
    ) -> tuple[str, tuple[Any, ...]]:
        """The statement (``_write``) and parameters that settle ``fold`` (the hold to release,
        the use to add), then reserve ``reserve`` or charge ``charge`` if every counter taken
        still fits."""
        release, use = fold
        if not release and not use:  # no settle folded in: one side, one amount each
            exact = not reserve
            moves, sets, checked, fits = _one_side(charge if exact else reserve, exact)
            return self._write_sql(moves, checked, row), (*sets, self.clock.now(), key, *fits)
        sets = []
        fits = []
        moves = []
        checked = []
        named = {*reserve, *charge, *release, *use}
        for d in COUNTERS:
            if d not in named:
                continue
            h, r = float(release.get(d, 0.0)), float(reserve.get(d, 0.0))
            c = float(charge.get(d, 0.0))
            u = float(use.get(d, 0.0)) + c
            if not (h or r or u or c):
                continue
            moves.append((d, bool(h), bool(r), bool(u)))
            held = [h, h] if h else []
            sets += [*held, r] if r else held
            if u:
                sets.append(u)
            if r + c > 0:
                checked.append(d)
                fits += [u] if u else []
                fits += [*held, r] if r else held
        return self._write_sql(moves, checked, row), (*sets, self.clock.now(), key, *fits)

    def _write_sql(
        self,
        moves: list[Move],
        checked: list[str],
        row: Returned,
        calm: tuple[str, ...] | None = None,
    ) -> str:
        shape = (tuple(moves), tuple(checked), row, calm)
        dialect = self._sql.dialect
        return self._sql.memoized(("budget-write", *shape), lambda: _write(dialect, *shape))

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
