"""Budget and quota ledgers against memory, SQLite and PostgreSQL (``store_factory``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.store.budget import LIMITS, LedgerTake
from tether.store.protocol import RunStore
from tether.testing.store_conformance_budget import BudgetConformance, ledgers
from tether.testing.store_helpers import T0

if TYPE_CHECKING:  # every backend takes lean (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _TAKERS: tuple[type[LedgerTake], ...] = (MemoryStore, SqliteStore, PostgresStore)


def taker(store: RunStore) -> LedgerTake:
    assert isinstance(store, LedgerTake), f"{type(store).__name__} cannot take lean"
    return store


class TestBudgetConformance(BudgetConformance):
    """``store_factory`` (tests/store/conftest.py) parametrizes every test over the backends."""

    async def test_a_lean_take_reads_back_what_a_budget_checks(self, store: RunStore) -> None:
        b, t = ledgers(store), taker(store)
        await b.open_ledger("run:r1", {"tool_calls": 3, "cost": 1.0, "depth": 2}, T0 - 5)
        assert await b.mark_ledger("run:r1", "evented", "cost")
        dims = ("cost", "tool_calls", "depth")
        one = await t.take_ledger(
            "run:r1", {"tool_calls": 1, "cost": 0.25}, exact=True, limited=dims
        )
        assert one is not None and one.key == "run:r1" and one.started_at == T0 - 5
        assert one.limits == {"cost": 1.0, "tool_calls": 3.0, "depth": 2.0}
        assert one.used["tool_calls"] == 1 and one.used["cost"] == 0.25
        assert one.reserved["tool_calls"] == 0 and one.spent("steps") == 0
        assert one.evented == ["cost"] and one.noted == []
        numbers = [*one.limits.values(), *one.used.values(), *one.reserved.values()]
        assert all(type(v) is float for v in numbers)  # as a whole ledger's: audited as such
        two = await t.take_ledger("run:r1", {"tool_calls": 1}, limited=dims)  # a reservation
        assert two is not None and two.reserved["tool_calls"] == 1 and two.spent("tool_calls") == 2
        # 1 used + 1 reserved + 2 > 3: refused, nothing changed
        assert await t.take_ledger("run:r1", {"tool_calls": 2}, limited=dims) is None
        row = await b.get_ledger("run:r1")
        assert row is not None and row.used["tool_calls"] == 1 and row.reserved["tool_calls"] == 1
        # a settle folded in is written first, the condition checked on the row it leaves
        fold = ({"tool_calls": 1.0}, {"tool_calls": 1.0})
        three = await t.take_ledger("run:r1", {"tool_calls": 1}, fold, exact=True, limited=dims)
        assert three is not None and three.used["tool_calls"] == 3
        assert three.reserved["tool_calls"] == 0
        assert await t.take_ledger("run:nope", {"steps": 1}, limited=dims) is None

    async def test_a_lean_take_sees_a_limit_set_outside_what_it_expected(
        self, store: RunStore
    ) -> None:
        b, t = ledgers(store), taker(store)
        await b.open_ledger("run:r1", {"tool_calls": 5}, T0)
        await b.charge_ledger("run:r1", {"steps": 3})
        await b.set_ledger_limits("run:r1", {"steps": 4, "wall_seconds": 60})
        row = await t.take_ledger("run:r1", {"tool_calls": 1}, exact=True, limited=("tool_calls",))
        assert row is not None
        assert row.limits == {"tool_calls": 5.0, "steps": 4.0, "wall_seconds": 60.0}
        assert row.used["steps"] == 3 and row.used["tool_calls"] == 1
        # a limit removed since is not reported, and an unknown name is no column
        await b.set_ledger_limits("run:r1", {"tool_calls": None})
        lean = await t.take_ledger(
            "run:r1", {"steps": 1}, exact=True, limited=("tool_calls", "steps", "wall_seconds", "x")
        )
        assert lean is not None and lean.limits == {"steps": 4.0, "wall_seconds": 60.0}
        assert lean.used["steps"] == 4
        # every dimension expected: nothing outside to look at
        await b.open_ledger("run:all", dict.fromkeys(LIMITS, 10.0), T0)
        full = await t.take_ledger("run:all", {"steps": 1}, exact=True, limited=LIMITS)
        assert full is not None and full.limits == dict.fromkeys(LIMITS, 10.0)
        assert full.used["steps"] == 1 and full.spent("cost") == 0
        # nothing expected: every limit still comes back
        none = await t.take_ledger("run:r1", {"tool_calls": 1}, exact=True)
        assert none is not None and none.limits == {"steps": 4.0, "wall_seconds": 60.0}
