"""``BudgetStore`` in a dict (mixed into ``MemoryStore``): budget and quota ledgers.

Every method runs without an ``await`` between its check and its write, so on one event loop
a reservation is as atomic as the SQL backends' single statement."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from tether.core.clock import Clock
from tether.store.budget import COUNTERS, LIMITS, Flag, Fold, Ledger


def _copy(row: Ledger) -> Ledger:
    return dataclasses.replace(
        row,
        limits=dict(row.limits),
        used=dict(row.used),
        reserved=dict(row.reserved),
        evented=list(row.evented),
        noted=list(row.noted),
    )


def _settle(row: Ledger, reserved: Mapping[str, float], used: Mapping[str, float]) -> None:
    for d in COUNTERS:
        row.reserved[d] = max(row.reserved[d] - float(reserved.get(d, 0.0)), 0.0)
        row.used[d] += float(used.get(d, 0.0))


class MemoryBudget:
    clock: Clock
    _ledger_rows: dict[str, Ledger]

    def _ledgers(self) -> dict[str, Ledger]:
        try:
            return self._ledger_rows
        except AttributeError:
            self._ledger_rows = {}
            return self._ledger_rows

    async def open_ledger(
        self, key: str, limits: Mapping[str, float], started_at: float
    ) -> tuple[Ledger, bool]:
        rows = self._ledgers()
        if key in rows:
            return _copy(rows[key]), False
        now = self.clock.now()
        rows[key] = Ledger(
            key,
            {d: float(v) for d, v in limits.items() if d in LIMITS and v is not None},
            dict.fromkeys(COUNTERS, 0.0),
            dict.fromkeys(COUNTERS, 0.0),
            started_at,
            created_at=now,
            updated_at=now,
        )
        return _copy(rows[key]), True

    async def get_ledger(self, key: str) -> Ledger | None:
        row = self._ledgers().get(key)
        return None if row is None else _copy(row)

    async def reserve_ledger(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None = None
    ) -> Ledger | None:
        return self._take(key, amounts, fold, "reserved")

    async def charge_ledger(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None = None
    ) -> Ledger | None:
        return self._take(key, amounts, fold, "used")

    async def fit_ledger(
        self,
        key: str,
        amounts: Mapping[str, float],
        fold: Fold | None = None,
        *,
        exact: bool = False,
    ) -> bool:
        return self._take(key, amounts, fold, "used" if exact else "reserved") is not None

    async def take_ledger(
        self,
        key: str,
        amounts: Mapping[str, float],
        fold: Fold | None = None,
        *,
        exact: bool = False,
        limited: tuple[str, ...] = (),
    ) -> Ledger | None:
        return self._take(key, amounts, fold, "used" if exact else "reserved")

    def _take(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None, into: str
    ) -> Ledger | None:
        """Reserve or charge (``into``) after the settle ``fold``, all or nothing."""
        row = self._ledgers().get(key)
        if row is None:
            return None
        after = _copy(row)
        if fold is not None:
            _settle(after, *fold)
        if after.refusing(amounts) is not None:
            return None
        target = after.reserved if into == "reserved" else after.used
        for d in COUNTERS:
            target[d] += float(amounts.get(d, 0.0))
        after.updated_at = self.clock.now()
        self._ledgers()[key] = after
        return _copy(after)

    async def settle_ledger(
        self, key: str, reserved: Mapping[str, float], used: Mapping[str, float]
    ) -> Ledger | None:
        row = self._ledgers().get(key)
        if row is None:
            return None
        _settle(row, reserved, used)
        row.updated_at = self.clock.now()
        return _copy(row)

    async def set_ledger_limits(
        self, key: str, limits: Mapping[str, float | None]
    ) -> Ledger | None:
        row = self._ledgers().get(key)
        if row is None:
            return None
        for d, v in limits.items():
            if d not in LIMITS:
                continue
            if v is None:
                row.limits.pop(d, None)
            else:
                row.limits[d] = float(v)
        row.updated_at = self.clock.now()
        return _copy(row)

    async def mark_ledger(self, key: str, flag: Flag, dimension: str) -> bool:
        row = self._ledgers().get(key)
        if row is None:
            return False
        marks = row.evented if flag == "evented" else row.noted
        if dimension in marks:
            return False
        marks.append(dimension)
        return True

    async def list_ledgers(self, prefix: str = "") -> list[Ledger]:
        rows = self._ledgers()
        return [_copy(rows[k]) for k in sorted(rows) if k.startswith(prefix)]

    async def delete_ledgers(self, prefix: str, updated_before: float) -> int:
        rows = self._ledgers()
        gone = [
            k for k, r in rows.items() if k.startswith(prefix) and r.updated_at < updated_before
        ]
        for k in gone:
            del rows[k]
        return len(gone)
