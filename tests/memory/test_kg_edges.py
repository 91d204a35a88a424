"""The knowledge graph at its edges: dense graphs in multi-hop walks, facts recorded out of
order in time, and bad arguments to every call (real SQLite and PostgreSQL stores)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.memory.conftest import MemoryFactory
from tether.core.errors import InvalidInputError, StoreError
from tether.llm.embeddings import HashingEmbedder
from tether.memory import InProcessMemory, MemoryScope, SqliteMemory
from tether.memory.types import Hop
from tether.testing import FakeClock

ACME = MemoryScope("acme")


def _complete(n: int) -> list[tuple[str, str]]:
    return [(f"n{i}", f"n{j}") for i in range(n) for j in range(n) if i != j]


def _layers(width: int, levels: int) -> list[tuple[str, str]]:
    """Every node of a layer points at every node of the next (width**levels paths to the last
    layer) and back at the start: many shortest paths and many cycles."""
    edges = [("s", f"l1_{j}") for j in range(width)]
    for lv in range(1, levels):
        edges += [(f"l{lv}_{i}", f"l{lv + 1}_{j}") for i in range(width) for j in range(width)]
        edges += [(f"l{lv + 1}_{i}", "s") for i in range(width)]
    return edges


def _shape(hops: list[Hop]) -> list[tuple[str, int, list[tuple[str, str]]]]:
    return [(h.node, h.depth, [(f.subject, f.object) for f in h.path]) for h in hops]


@pytest.mark.parametrize("direction", ["out", "in", "both"])
async def test_hops_over_a_dense_graph_match_the_reference_walk(
    memory_factory: MemoryFactory, clock: FakeClock, direction: str
) -> None:
    """Each node once, at its least depth, with the same shortest path the in-process walk
    picks, on a graph with thousands of paths and cycles through the start."""
    m = await memory_factory()
    ref = InProcessMemory(embedder=HashingEmbedder(64), clock=clock)
    for a, b in _layers(3, 4) + _complete(5):
        for kg in (m.kg, ref.kg):
            await kg.assert_fact(a, "r", b, scope=ACME)
    clock.advance(1)
    for start in ("s", "n0", "l2_1"):
        got = await m.kg.hops(start, scope=ACME, depth=10, direction=direction)  # type: ignore[arg-type]
        want = await ref.kg.hops(start, scope=ACME, depth=10, direction=direction)  # type: ignore[arg-type]
        assert _shape(got) == _shape(want)
        assert len({h.node for h in got}) == len(got)
    layered = await m.kg.hops("s", scope=ACME, depth=10)
    assert [(h.node, h.depth) for h in layered if h.node.startswith("l4")] == [
        (f"l4_{j}", 4) for j in range(3)
    ]


async def test_hops_over_a_complete_graph_stay_bounded_on_sqlite(tmp_path: Path) -> None:
    """Nine nodes, every one pointing at every other: 8! paths of length 8 from each node. A
    walk that expands each node once does a few hundred facts' work; the recursive query that
    walked every path took 87 s here. SQLite's progress handler counts the virtual machine's
    work (deterministic) and interrupts the walk past a generous bound."""
    clock = FakeClock()
    m = SqliteMemory(str(tmp_path / "kg.db"), embedder=HashingEmbedder(64), clock=clock)
    await m.setup()
    try:
        for a, b in _complete(9):
            await m.kg.assert_fact(a, "r", b, scope=ACME)
        clock.advance(1)
        ticks = 0

        def tick() -> int:
            nonlocal ticks
            ticks += 1
            return 1 if ticks > 2_000 else 0  # 2,000,000 instructions: interrupt

        db: sqlite3.Connection = m._thread.db
        db.set_progress_handler(tick, 1000)
        try:
            hops = await m.kg.hops("n0", scope=ACME, depth=8, direction="both")
        except StoreError as exc:  # interrupted
            pytest.fail(f"a depth-8 walk of a 9-node graph did unbounded work: {exc}")
        finally:
            db.set_progress_handler(None, 0)
        assert [(h.node, h.depth) for h in hops] == [(f"n{i}", 1) for i in range(1, 9)]
    finally:
        await m.close()


DAY = 86_400.0


async def test_a_fact_recorded_late_ends_where_the_next_one_begins(
    memory_factory: MemoryFactory, clock: FakeClock
) -> None:
    """Learning in March that the user lived in Paris since January, when Berlin from February
    is already known: Paris held from January to February. It used to be left open, so a
    functional relation held two objects at once ever after (and a non-functional fact came
    back twice)."""
    m = await memory_factory(functional_relations={"lives_in"})
    kg = m.kg
    t0 = clock.now() - 100 * DAY
    berlin = await kg.assert_fact(
        "alice", "lives_in", "Berlin", scope=ACME, valid_from=t0 + 30 * DAY
    )
    paris = await kg.assert_fact("alice", "lives_in", "Paris", scope=ACME, valid_from=t0)
    assert (paris.valid_to, paris.superseded_by) == (berlin.valid_from, berlin.id)
    now = await kg.facts(scope=ACME, subject="alice", relation="lives_in")
    assert [f.object for f in now] == ["Berlin"]
    then = await kg.facts(scope=ACME, subject="alice", relation="lives_in", at=t0 + DAY)
    assert [f.object for f in then] == ["Paris"]
    history = await kg.history("alice", "lives_in", scope=ACME)
    assert [(f.object, f.valid_to) for f in history] == [
        ("Paris", t0 + 30 * DAY),
        ("Berlin", None),
    ]
    # a fact before both ends where the earliest of them begins
    rome = await kg.assert_fact("alice", "lives_in", "Rome", scope=ACME, valid_from=t0 - DAY)
    assert (rome.valid_to, rome.superseded_by) == (t0, paris.id)
    for t in (t0 - DAY, t0, t0 + 30 * DAY, clock.now()):
        assert len(await kg.facts(scope=ACME, subject="alice", relation="lives_in", at=t)) == 1
    # a non-functional fact recorded again from earlier: one answer at any time
    await kg.assert_fact("bob", "likes", "tea", scope=ACME, valid_from=t0 + 30 * DAY)
    await kg.assert_fact("bob", "likes", "coffee", scope=ACME, valid_from=t0 + 40 * DAY)
    early = await kg.assert_fact("bob", "likes", "tea", scope=ACME, valid_from=t0)
    assert early.valid_to == t0 + 30 * DAY
    likes = await kg.facts(scope=ACME, subject="bob", relation="likes")
    assert sorted(f.object for f in likes) == ["coffee", "tea"]
    # another tenant's later fact does not end this tenant's
    other = MemoryScope("globex")
    mine = await kg.assert_fact("alice", "lives_in", "Oslo", scope=other, valid_from=t0 - 2 * DAY)
    assert mine.valid_to is None


@pytest.mark.parametrize(
    ("subject", "relation", "obj"),
    [("\ud800", "r", "o"), ("s", "a\x00b", "o"), ("s", "r", ""), ("s", "r", 42), (None, "r", "o")],
)
async def test_retract_refuses_what_assert_fact_refuses(
    memory_factory: MemoryFactory, subject: object, relation: object, obj: object
) -> None:
    """``retract`` used to pass its names to the database unchecked: a lone surrogate came out
    of SQLite and PostgreSQL as a UnicodeEncodeError traceback, and the in-process graph
    answered 0 for names no fact can have. It now says what was wrong, as ``assert_fact``."""
    m = await memory_factory()
    await m.kg.assert_fact("s", "r", "o", scope=ACME)
    with pytest.raises(InvalidInputError, match="a fact's"):
        await m.kg.retract(subject, relation, obj, scope=ACME)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="scope"):
        await m.kg.retract("s", "r", "o", scope="acme")  # type: ignore[arg-type]
    assert len(await m.kg.facts(scope=ACME)) == 1
    assert await m.kg.retract("s", "r", "o", scope=ACME) == 1
