"""A multi-hop walk reads one snapshot of the graph on SQLite and PostgreSQL: another connection
(another runtime, another process) superseding facts between two levels of the walk changes
nothing in its answer, which is the graph as it was when the walk began."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from tests.memory.conftest import MemoryFactory
from tether.memory import MemoryScope
from tether.memory.sql_kg import Begin, SqlKnowledgeGraph
from tether.memory.sql_tx import Tx
from tether.memory.types import Hop
from tether.testing import FakeClock

ACME = MemoryScope("acme")


class BetweenLevels:
    """A ``Begin`` over a store's own: in a read transaction, right after its first statement
    (the walk's first level), awaits ``between`` once, before the next statement is sent."""

    def __init__(self, begin: Begin, between: Callable[[], Awaitable[None]]) -> None:
        self.begin, self.between, self.reads = begin, between, 0

    @contextlib.asynccontextmanager
    async def __call__(self, lock: str | None) -> AsyncIterator[Tx]:
        async with self.begin(lock) as tx:
            yield tx if lock is not None else _Hooked(tx, self)


class _Hooked:
    def __init__(self, tx: Tx, owner: BetweenLevels) -> None:
        self.tx, self.owner = tx, owner

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows = await self.tx.fetch(sql, params)
        self.owner.reads += 1
        if self.owner.reads == 1:
            await self.owner.between()
        return rows

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self.tx.execute(sql, params)


def _shape(hops: list[Hop]) -> list[tuple[str, int, list[tuple[str, str, str]]]]:
    return [(h.node, h.depth, [(f.subject, f.relation, f.object) for f in h.path]) for h in hops]


@pytest.mark.parametrize("memory_factory", ["sqlite", "postgres"], indirect=True)
async def test_a_walk_never_mixes_two_versions_of_the_graph(
    memory_factory: MemoryFactory, clock: FakeClock
) -> None:
    """a -> b -> c; between the walk's levels another connection moves both edges in turn
    (a -> x, b -> d). The graph was {b, c} before and {x} after; the walk used to answer
    {b, d}, a graph that never was (its first level from before, its second from after)."""
    reader = await memory_factory(functional_relations=["manages"])
    writer = await memory_factory(functional_relations=["manages"])  # its own connection
    for a, b in (("a", "b"), ("b", "c")):
        await writer.kg.assert_fact(a, "manages", b, scope=ACME)
    clock.advance(60)

    async def supersede() -> None:
        await writer.kg.assert_fact("a", "manages", "x", scope=ACME)
        await writer.kg.assert_fact("b", "manages", "d", scope=ACME)
        seen = await writer.kg.facts(scope=ACME, relation="manages")
        assert sorted((f.subject, f.object) for f in seen) == [("a", "x"), ("b", "d")]

    own = reader.kg
    assert isinstance(own, SqlKnowledgeGraph)
    hooked = BetweenLevels(own._begin, supersede)
    walk = SqlKnowledgeGraph(hooked, own.flavor, clock=own.clock)
    hops = await walk.hops("a", scope=ACME, depth=3)
    assert hooked.reads >= 2  # the write did come between two of the walk's reads
    assert _shape(hops) == [
        ("b", 1, [("a", "manages", "b")]),
        ("c", 2, [("a", "manages", "b"), ("b", "manages", "c")]),
    ]
    assert all(f.valid_to is None for h in hops for f in h.path)  # as they were then
    assert _shape(await own.hops("a", scope=ACME, depth=3)) == [
        ("x", 1, [("a", "manages", "x")])
    ]  # a walk begun after the write sees it whole
