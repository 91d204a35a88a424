"""MemoryPlane's Python API inside a node: remember, recall and forget are journaled, so a node
re-run after an interrupt writes nothing twice and sees the same hits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime, interrupt
from tether.llm import HashingEmbedder
from tether.memory import InProcessMemory, MemoryPlane, MemoryScope, Provenance
from tether.store.sqlite import SqliteStore


class S(TypedDict, total=False):
    ids: list[str]
    hits: list[str]
    forgotten: int
    answer: str


async def test_python_api_in_a_node_is_journaled(tmp_path: Path) -> None:
    plane = MemoryPlane(InProcessMemory(embedder=HashingEmbedder()))
    acme = MemoryScope("acme")
    old = await plane.remember("the user prefers tea over coffee", scope=acme)  # outside a run

    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        new = await plane.remember(
            "the user drinks green tea", scope=acme, provenance=Provenance(source="user")
        )
        hits = await plane.recall("tea", scope=acme, k=5)
        forgotten = await plane.forget([old.id], scope=acme)
        answer = interrupt("carry on?")  # the node re-runs from the top on resume
        return {
            "ids": [new.id],
            "hits": [h.memory.text for h in hits],
            "forgotten": forgotten,
            "answer": answer,
        }

    g = Graph(S, name="plane_in_node")
    g.add_node("node", node).add_edge(START, "node").add_edge("node", END)
    wf = g.compile()
    async with Runtime(SqliteStore(tmp_path / "r.db"), workflows=[wf], recover=False) as rt:
        parked = await rt.run(wf, {}, tenant="acme")
        done = await rt.resume(parked.run_id, "yes")
        effects = await rt.store.list_effects(parked.run_id)
    assert done.completed
    stored, _ = await plane.episodic.list(acme)
    assert [m.text for m in stored] == ["the user drinks green tea"]  # written once
    assert done.state["ids"] == [stored[0].id]
    assert sorted(done.state["hits"]) == sorted(
        ["the user prefers tea over coffee", "the user drinks green tea"]
    )  # the recorded hits, though the first memory is gone now
    assert done.state["forgotten"] == 1  # the recorded count, not a second delete's 0
    ops = [e.request["op"] for e in effects if e.kind == "memory"]
    assert ops == ["remember", "recall", "forget"]
