"""Conformance: budget and quota ledgers (``tether.store.budget``).

Racing reservers are separate store instances on one database (the in-memory store hands back
the same instance); time stands still unless a test moves the ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tether.store.budget import COUNTERS, BudgetStore, Fold, Ledger, LedgerFit
from tether.store.protocol import RunStore
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, StoreFactory, StoreTestBase

if TYPE_CHECKING:  # every backend satisfies BudgetStore statically too (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _BACKENDS: tuple[type[BudgetStore], ...] = (MemoryStore, SqliteStore, PostgresStore)
    _FITTERS: tuple[type[LedgerFit], ...] = (MemoryStore, SqliteStore, PostgresStore)


def ledgers(store: RunStore) -> BudgetStore:
    assert isinstance(store, BudgetStore), f"{type(store).__name__} keeps no budget ledgers"
    return store


class BudgetConformance(StoreTestBase):
    async def test_a_ledger_is_created_once_with_its_limits(self, store: RunStore) -> None:
        b = ledgers(store)
        row, created = await b.open_ledger("run:r1", {"cost": 2.5, "depth": 3}, T0 - 10)
        assert created
        assert row.limits == {"cost": 2.5, "depth": 3.0}
        assert row.used == dict.fromkeys(COUNTERS, 0.0) == row.reserved
        assert row.started_at == T0 - 10 and row.evented == [] == row.noted
        again, created = await b.open_ledger("run:r1", {"cost": 99.0}, T0)
        assert not created and again.limits == {"cost": 2.5, "depth": 3.0}
        assert again.started_at == T0 - 10
        assert await b.get_ledger("run:nope") is None

    async def test_a_reservation_fits_or_changes_nothing(self, store: RunStore) -> None:
        b = ledgers(store)
        await b.open_ledger("run:r1", {"tokens": 100, "model_calls": 2}, T0)
        one = await b.reserve_ledger("run:r1", {"tokens": 60, "model_calls": 1})
        assert one is not None and one.reserved["tokens"] == 60 and one.used["tokens"] == 0
        # 60 + 50 > 100: refused, and the model call it asked for is not held either
        assert await b.reserve_ledger("run:r1", {"tokens": 50, "model_calls": 1}) is None
        row = await b.get_ledger("run:r1")
        assert row is not None and row.reserved["model_calls"] == 1
        assert row.refusing({"tokens": 50}) == "tokens"
        # settling frees what the call did not use
        settled = await b.settle_ledger("run:r1", {"tokens": 60, "model_calls": 1}, {"tokens": 20})
        assert settled is not None
        assert settled.reserved["tokens"] == 0 and settled.used["tokens"] == 20
        assert settled.used["model_calls"] == 0  # settled with what the call reported
        two = await b.reserve_ledger("run:r1", {"tokens": 80, "model_calls": 1})
        assert two is not None and two.spent("tokens") == 100
        # exactly at the limit is allowed; a dimension with nothing asked is not checked
        assert await b.reserve_ledger("run:r1", {"cost": 5.0}) is not None
        assert await b.reserve_ledger("run:nope", {"tokens": 1}) is None

    async def test_a_charge_goes_straight_to_used_or_changes_nothing(self, store: RunStore) -> None:
        b = ledgers(store)
        await b.open_ledger("run:r1", {"tool_calls": 2, "steps": 5}, T0)
        one = await b.charge_ledger("run:r1", {"tool_calls": 1})
        assert one is not None and one.used["tool_calls"] == 1 and one.reserved["tool_calls"] == 0
        assert await b.reserve_ledger("run:r1", {"tool_calls": 1}) is not None
        # 1 used + 1 reserved + 1 > 2: refused, nothing changed
        assert await b.charge_ledger("run:r1", {"tool_calls": 1, "steps": 1}) is None
        row = await b.get_ledger("run:r1")
        assert row is not None and row.used["tool_calls"] == 1 and row.used["steps"] == 0
        # a refund of an exact charge is a settle of nothing reserved and a negative use
        back = await b.settle_ledger("run:r1", {}, {"tool_calls": -1})
        assert back is not None and back.used["tool_calls"] == 0
        assert await b.charge_ledger("run:nope", {"steps": 1}) is None

    async def test_a_settle_folds_into_the_next_reservation_or_charge(
        self, store: RunStore
    ) -> None:
        b = ledgers(store)
        await b.open_ledger("run:r1", {"tokens": 100, "tool_calls": 3}, T0)
        held = {"tokens": 60.0, "model_calls": 1.0}
        assert await b.reserve_ledger("run:r1", held) is not None
        # 60 held + 50 > 100, but the folded settle frees 40 of it first: fits, one write
        row = await b.reserve_ledger("run:r1", {"tokens": 50}, (held, {"tokens": 20.0}))
        assert row is not None and row.used["tokens"] == 20 and row.reserved["tokens"] == 50
        assert row.reserved["model_calls"] == 0
        # refused: nothing changed, the settle included
        assert (
            await b.reserve_ledger("run:r1", {"tokens": 40}, ({"tokens": 50.0}, {"tokens": 45.0}))
            is None
        )
        same = await b.get_ledger("run:r1")
        assert same is not None and (same.used["tokens"], same.reserved["tokens"]) == (20, 50)
        # a charge with the settle folded in; the hold is never released below 0
        got = await b.charge_ledger(
            "run:r1", {"tool_calls": 1}, ({"tokens": 80.0}, {"tokens": 50.0})
        )
        assert got is not None and got.used["tokens"] == 70 and got.reserved["tokens"] == 0
        assert got.used["tool_calls"] == 1
        assert await b.charge_ledger("run:r1", {"tokens": 31}, ({}, {})) is None
        assert await b.charge_ledger("run:nope", {"steps": 1}, ({}, {"tokens": 1.0})) is None

    async def test_an_overrun_dimension_refuses_only_calls_that_need_it(
        self, store: RunStore
    ) -> None:
        b = ledgers(store)
        await b.open_ledger("run:r1", {"tokens": 10, "tool_calls": 5}, T0)
        held = {"tokens": 10.0}
        assert await b.reserve_ledger("run:r1", held) is not None
        over = await b.settle_ledger("run:r1", held, {"tokens": 14})  # used more than held
        assert over is not None and over.used["tokens"] == 14 and over.reserved["tokens"] == 0
        assert await b.reserve_ledger("run:r1", {"tokens": 1}) is None
        assert await b.reserve_ledger("run:r1", {"tool_calls": 1}) is not None

    async def test_racing_reservations_never_pass_a_limit_together(
        self, store_factory: StoreFactory
    ) -> None:
        stores = [ledgers(await store_factory()) for _ in range(4)]
        await stores[0].open_ledger("run:race", {"cost": 7.0}, T0)

        async def grab(b: BudgetStore) -> int:
            got = 0
            for _ in range(5):
                got += await b.reserve_ledger("run:race", {"cost": 1.0}) is not None
            return got

        got = await asyncio.gather(*(grab(b) for b in stores))
        assert sum(got) == 7
        row = await stores[0].get_ledger("run:race")
        assert row is not None and row.reserved["cost"] == 7.0

    async def test_racing_folded_reservations_stay_within_the_limit(
        self, store_factory: StoreFactory
    ) -> None:
        """Each racer reserves 1, and each next reservation carries the settle of its last
        (held 1, used 0.5): together they never pass the limit, and every settle lands."""
        stores = [ledgers(await store_factory()) for _ in range(4)]
        await stores[0].open_ledger("run:fold", {"cost": 7.0}, T0)
        hold, used = {"cost": 1.0}, {"cost": 0.5}

        async def grab(b: BudgetStore) -> int:
            got, pending = 0, None
            for _ in range(6):
                row = await b.reserve_ledger("run:fold", hold, pending)
                if row is None and pending is not None:
                    await b.settle_ledger("run:fold", *pending)
                pending = (hold, used) if row is not None else None
                if row is not None:
                    got += 1
                    assert row.spent("cost") <= 7.0
            if pending is not None:
                await b.settle_ledger("run:fold", *pending)
            return got

        got = sum(await asyncio.gather(*(grab(b) for b in stores)))
        row = await stores[0].get_ledger("run:fold")
        assert row is not None and row.reserved["cost"] == 0
        assert row.used["cost"] == 0.5 * got <= 7.0 and got >= 7

    async def test_limits_are_raised_and_removed(self, store: RunStore) -> None:
        b = ledgers(store)
        await b.open_ledger("run:r1", {"cost": 1.0, "steps": 4}, T0)
        row = await b.set_ledger_limits("run:r1", {"cost": 3.0, "steps": None, "depth": 2})
        assert row is not None and row.limits == {"cost": 3.0, "depth": 2.0}
        assert await b.set_ledger_limits("run:nope", {"cost": 1.0}) is None

    async def test_a_soft_limit_flag_is_marked_by_one_caller(
        self, store_factory: StoreFactory
    ) -> None:
        stores = [ledgers(await store_factory()) for _ in range(3)]
        await stores[0].open_ledger("run:r1", {"cost": 1.0}, T0)
        won = await asyncio.gather(*(b.mark_ledger("run:r1", "evented", "cost") for b in stores))
        assert sorted(won) == [False, False, True]
        assert await stores[0].mark_ledger("run:r1", "noted", "cost")
        assert await stores[0].mark_ledger("run:r1", "noted", "tokens")
        assert not await stores[1].mark_ledger("run:r1", "noted", "tokens")
        row = await stores[1].get_ledger("run:r1")
        assert row is not None and row.evented == ["cost"] and row.noted == ["cost", "tokens"]
        assert not await stores[0].mark_ledger("run:nope", "noted", "cost")

    async def test_ledgers_are_listed_by_prefix_and_old_ones_deleted(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        b = ledgers(store)
        for key in ("quota:t_1:100", "quota:t_1:200", "quota:tx1:100", "run:a"):
            await b.open_ledger(key, {}, T0)
            clock.advance(1)
        assert [r.key for r in await b.list_ledgers("quota:t_1:")] == [
            "quota:t_1:100",
            "quota:t_1:200",
        ]  # "_" is not a wildcard
        assert len(await b.list_ledgers()) == 4
        assert await b.delete_ledgers("quota:", clock.now() - 3.5) == 1
        assert [r.key for r in await b.list_ledgers("quota:")] == ["quota:t_1:200", "quota:tx1:100"]

    async def test_a_fit_is_a_reservation_or_charge_without_the_row(self, store: RunStore) -> None:
        b = ledgers(store)
        assert isinstance(b, LedgerFit)
        await b.open_ledger("quota:t:1", {"tokens": 100, "runs": 1}, T0)
        assert await b.fit_ledger("quota:t:1", {"tokens": 60, "runs": 1})
        assert not await b.fit_ledger("quota:t:1", {"tokens": 50})  # 60 + 50 > 100
        assert not await b.fit_ledger("quota:t:1", {"runs": 1}, exact=True)
        # with a settle folded in: 60 held, 20 used, then 70 more fits (20 + 70 <= 100)
        assert await b.fit_ledger("quota:t:1", {"tokens": 70}, ({"tokens": 60.0}, {"tokens": 20}))
        assert await b.fit_ledger("quota:t:1", {"tokens": 10}, exact=True)
        row = await b.get_ledger("quota:t:1")
        assert row is not None
        assert (row.used["tokens"], row.reserved["tokens"]) == (30, 70)
        assert (row.used["runs"], row.reserved["runs"]) == (0, 1)
        # refused with a fold: nothing changed, the settle included
        assert not await b.fit_ledger("quota:t:1", {"tokens": 99}, ({"tokens": 70.0}, {}))
        assert await b.get_ledger("quota:t:1") == row
        assert not await b.fit_ledger("quota:nope", {"tokens": 1})

    async def test_writes_move_only_their_counters_as_the_reference_does(
        self, store: RunStore
    ) -> None:
        """Random reservations, charges and settles (folded or not, over a few counters or
        all, negative uses included) give the ledger the in-memory reference gives, write by
        write: what fits, and every counter after it."""
        from tether.store.memory import MemoryStore

        b, ref = ledgers(store), MemoryStore(FakeClock(start=T0))
        rnd = random.Random(11)
        limits = {"tokens": 40.0, "cost": 6.0, "tool_calls": 9.0, "runs": 3.0}
        for x in (b, ref):
            await x.open_ledger("run:w", limits, T0)

        def amounts(k: int) -> dict[str, float]:
            return {d: rnd.randrange(0, 9) / 2 for d in rnd.sample(COUNTERS, k)}

        for _ in range(60):
            op, k = rnd.choice(["reserve", "charge", "settle", "fit"]), rnd.randrange(0, 5)
            amount = amounts(k)
            fold: Fold | None = None
            if op == "settle" or rnd.random() < 0.5:
                use = amounts(rnd.randrange(0, 4))
                if rnd.random() < 0.2:
                    use = {d: -v for d, v in use.items()}  # an exact charge given back
                fold = (amounts(rnd.randrange(0, 4)), use)
            got, want = [await _write(x, op, amount, fold) for x in (b, ref)]
            assert (got is None) == (want is None), (op, amount, fold)
            row, expect = await b.get_ledger("run:w"), await ref.get_ledger("run:w")
            assert row is not None and expect is not None
            assert (row.used, row.reserved) == (expect.used, expect.reserved), (op, amount, fold)
            if isinstance(got, Ledger) and isinstance(want, Ledger):
                assert (got.used, got.reserved) == (want.used, want.reserved)


async def _write(
    b: BudgetStore, op: str, amounts: Mapping[str, float], fold: Fold | None
) -> Ledger | bool | None:
    if op == "settle":
        assert fold is not None
        return await b.settle_ledger("run:w", *fold)
    if op == "fit":
        assert isinstance(b, LedgerFit)
        return await b.fit_ledger("run:w", amounts, fold) or None
    write = b.reserve_ledger if op == "reserve" else b.charge_ledger
    return await write("run:w", amounts, fold)
