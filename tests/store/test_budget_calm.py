"""``charge_calm`` (``LedgerCalm``) on SQLite and PostgreSQL: a charge written with nothing read back only when
the ledger it leaves needs no look (no limit outside the expected counters, every limited
counter short of the soft fraction of its limit or announced); otherwise nothing is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tether.store.budget import LedgerCalm
from tether.store.protocol import RunStore

LIMITED = ("cost", "tool_calls")
Factory = Callable[[], Awaitable[RunStore]]


async def store_with(store_factory: Factory, **limits: float) -> Any:
    store = await store_factory()  # memory, SQLite, PostgreSQL (tests/store/conftest.py)
    if not isinstance(store, LedgerCalm):
        pytest.skip(f"{type(store).__name__} has no calm charge (it takes lean)")
    await store.open_ledger("run:r", limits, 1.0)  # type: ignore[attr-defined]
    return store


async def used(store: Any, dim: str) -> float:
    row = await store.get_ledger("run:r")
    assert row is not None
    return row.used[dim]


async def test_a_charge_far_from_the_soft_limit_is_written(store_factory: Factory) -> None:
    store = await store_with(store_factory, tool_calls=10, cost=5)
    amounts = {"tool_calls": 1.0, "cost": 0.5}
    for _ in range(7):  # 7 calls, 3.5 cost: short of 80 % of both
        assert await store.charge_calm("run:r", amounts, limited=LIMITED, soft=0.8)
    assert (await used(store, "tool_calls"), await used(store, "cost")) == (7.0, 3.5)
    # the 8th reaches 80 % of tool_calls: not written here
    assert not await store.charge_calm("run:r", amounts, limited=LIMITED, soft=0.8)
    assert await used(store, "tool_calls") == 7.0
    # once that soft limit is announced, charges are calm again, up to the limit
    assert await store.mark_ledger("run:r", "evented", "tool_calls")
    assert await store.charge_calm("run:r", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert await store.charge_calm("run:r", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert await store.charge_calm("run:r", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert not await store.charge_calm("run:r", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert await used(store, "tool_calls") == 10.0  # the limit holds


async def test_an_unmoved_counter_past_its_soft_limit_is_not_calm(store_factory: Factory) -> None:
    store = await store_with(store_factory, tool_calls=100, cost=1)
    assert await store.charge_ledger("run:r", {"cost": 0.9}) is not None
    assert not await store.charge_calm("run:r", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert await used(store, "tool_calls") == 0.0


async def test_a_limit_outside_the_expected_ones_is_not_calm(store_factory: Factory) -> None:
    store = await store_with(store_factory, tool_calls=100)
    await store.set_ledger_limits("run:r", {"wall_seconds": 60.0})
    assert not await store.charge_calm("run:r", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert (
        await store.charge_calm(
            "run:r", {"tool_calls": 1.0}, limited=(*LIMITED, "wall_seconds"), soft=0.8
        )
        is False
    )  # wall_seconds is no counter: never calm
    assert await used(store, "tool_calls") == 0.0
    await store.set_ledger_limits("run:r", {"wall_seconds": None, "steps": 5.0})
    assert not await store.charge_calm("run:r", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert await store.charge_calm(
        "run:r", {"tool_calls": 1.0}, limited=(*LIMITED, "steps"), soft=0.8
    )
    assert await used(store, "tool_calls") == 1.0


async def test_a_charge_that_does_not_fit_or_a_missing_ledger_writes_nothing(
    store_factory: Factory,
) -> None:
    store = await store_with(store_factory, tool_calls=1, cost=5)
    assert not await store.charge_calm("run:r", {"tool_calls": 2.0}, limited=LIMITED, soft=1.0)
    assert not await store.charge_calm("run:x", {"tool_calls": 1.0}, limited=LIMITED, soft=0.8)
    assert await used(store, "tool_calls") == 0.0
