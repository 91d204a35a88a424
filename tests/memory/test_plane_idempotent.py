"""Memories added under an idempotency (journal) key: a retry of the same call finds its memory
again, and nothing else meets it on its id: not another tenant using the same key, not another
text under a key used again (a run id reused after its run was deleted, a client's key sent
with another request), not a near-miss of the text (real stores, real runs)."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

from tests.memory.conftest import MemoryFactory
from tether import END, START, Graph, RunContext, Runtime
from tether.core.errors import InvalidInputError
from tether.llm import HashingEmbedder
from tether.memory import InProcessMemory, MemoryPlane, MemoryScope, NewMemory
from tether.store.sqlite import SqliteStore

ACME, GLOBEX = MemoryScope("acme"), MemoryScope("globex")


async def test_two_tenants_using_one_key_each_get_their_own_memory(
    memory_factory: MemoryFactory,
) -> None:
    """Before, the id came from the key alone: the second tenant's add was refused ("memory id
    already stored") because the first tenant's row held it."""
    plane = MemoryPlane(await memory_factory())
    a = await plane.add_once("the user likes tea", scope=ACME, key="request-1")
    b = await plane.add_once("the user likes tea", scope=GLOBEX, key="request-1")
    assert a.id != b.id
    assert (a.scope, b.scope) == (ACME, GLOBEX)
    assert [m.text for m in (await plane.episodic.list(GLOBEX))[0]] == ["the user likes tea"]
    assert await plane.episodic.count(ACME) == 1
    assert await plane.episodic.get(b.id, scope=ACME) is None  # never the other tenant's


async def test_a_key_used_again_for_another_text_stores_that_text(
    memory_factory: MemoryFactory,
) -> None:
    """Before, the second text was dropped: the caller got the first memory back under its key.
    A retry of the very same call still gets the stored memory, and near-misses of a text
    (another Unicode normal form, a trailing space, another case) are texts of their own."""
    plane = MemoryPlane(await memory_factory())
    first = await plane.add_once("the user lives in Porto", scope=ACME, key="k")
    again = await plane.add_once("the user lives in Porto", scope=ACME, key="k")
    assert again == first  # the retry: the stored memory, not a second copy
    nfc = unicodedata.normalize("NFC", "the user likes the café")
    nfd = unicodedata.normalize("NFD", nfc)
    texts = ["the user moved to Lisbon", nfc, nfd, nfc + " ", nfc.upper()]
    others = [await plane.add_once(t, scope=ACME, key="k") for t in texts]
    assert [m.text for m in others] == texts
    assert len({first.id, *(m.id for m in others)}) == 1 + len(texts)
    stored, _ = await plane.episodic.list(ACME, limit=100)
    assert sorted(m.text for m in stored) == sorted(["the user lives in Porto", *texts])
    for m in others:  # a second retry of each finds it again
        assert await plane.add_once(m.text, scope=ACME, key="k") == m


class Meeting(HashingEmbedder):
    """Embeds once ``n`` calls are waiting: every add has passed its check for a stored id
    before any of them writes (the window two processes adding at once share)."""

    def __init__(self, n: int) -> None:
        super().__init__(128)
        self.barrier = asyncio.Barrier(n)

    async def embed(self, texts: Sequence[str]) -> Any:
        await self.barrier.wait()
        return await super().embed(texts)


async def test_the_same_call_made_at_once_through_two_connections_stores_one_memory(
    memory_factory: MemoryFactory,
) -> None:
    """Both get the stored memory. Before, the one that wrote second failed with the
    database's own "UNIQUE constraint failed" (a StoreError) on SQLite and PostgreSQL."""
    embedder = Meeting(2)
    one = await memory_factory(embedder=embedder)
    two = one if memory_factory.kind == "inprocess" else await memory_factory(embedder=embedder)  # type: ignore[attr-defined]
    calls = [MemoryPlane(m).add_once("the user likes tea", scope=ACME, key="k") for m in (one, two)]
    a, b = await asyncio.gather(*calls)
    assert a.id == b.id and a.text == b.text == "the user likes tea"
    assert await one.count(ACME) == 1
    # a named id two writers race for: the loser gets the typed refusal, not the database's
    items = [NewMemory("first", id="race-1"), NewMemory("second", id="race-1")]
    got = await asyncio.gather(
        *(m.add_many([item], scope=ACME) for m, item in zip((one, two), items, strict=True)),
        return_exceptions=True,
    )
    assert sum(isinstance(g, list) for g in got) == 1
    [refused] = [g for g in got if isinstance(g, BaseException)]
    assert isinstance(refused, InvalidInputError) and "already stored" in str(refused)


class S(TypedDict, total=False):
    ids: list[str]


def _workflow(plane: MemoryPlane, texts: list[str]) -> Any:
    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        memories = [await plane.remember(t, scope=ACME) for t in texts]
        return {"ids": [m.id for m in memories]}

    g = Graph(S, name="remembers")
    g.add_node("node", node).add_edge(START, "node").add_edge("node", END)
    return g.compile()


async def test_one_step_remembering_one_text_twice_stores_it_twice(tmp_path: Path) -> None:
    """Two calls are two journal keys: the second is not taken for a retry of the first."""
    plane = MemoryPlane(InProcessMemory(embedder=HashingEmbedder()))
    wf = _workflow(plane, ["the user likes tea", "the user likes tea"])
    async with Runtime(SqliteStore(tmp_path / "r.db"), workflows=[wf], recover=False) as rt:
        done = await rt.run(wf, {}, tenant="acme")
    stored, _ = await plane.episodic.list(ACME)
    assert [m.text for m in stored] == ["the user likes tea"] * 2
    assert sorted(done.state["ids"]) == sorted(m.id for m in stored)


async def test_a_run_id_used_again_after_its_run_was_deleted_stores_the_new_text(
    tmp_path: Path,
) -> None:
    """The journal key of a run's first ``remember`` is the same for every run of that id.
    Before, a run started again under a deleted run's id got that run's memory back: its own
    text was never stored and its state named a memory that said something else."""
    plane = MemoryPlane(InProcessMemory(embedder=HashingEmbedder()))
    first = _workflow(plane, ["the order ships on Monday"])
    second = _workflow(plane, ["the order was cancelled"])
    async with Runtime(
        SqliteStore(tmp_path / "r.db"), workflows=[first, second], recover=False
    ) as rt:
        one = await rt.run(first, {}, run_id="order-42", tenant="acme")
        await rt.store.delete_run("order-42")
        two = await rt.run(second, {}, run_id="order-42", tenant="acme")
    assert one.completed and two.completed
    [got] = [await plane.episodic.get(i, scope=ACME) for i in two.state["ids"]]
    assert got is not None and got.text == "the order was cancelled"
    stored, _ = await plane.episodic.list(ACME)
    assert sorted(m.text for m in stored) == [
        "the order ships on Monday",
        "the order was cancelled",
    ]
