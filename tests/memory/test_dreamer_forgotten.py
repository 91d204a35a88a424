"""A memory the user forgets while a dream runs stays forgotten: it is not sent to the merge
model, not stored inside the merged memory, not named as its source, not audited as merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.memory.test_dreamer import LISBON, SEATS, seeded, texts
from tether import Runtime
from tether.llm import FunctionModel, HashingEmbedder
from tether.llm.model import Model
from tether.llm.types import ModelRequest
from tether.memory import MemoryScope
from tether.memory.dreamer import dreamer_workflow
from tether.memory.dreamer_audit import consolidation_audit
from tether.memory.plane import MemoryPlane
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock

ACME = MemoryScope("acme")


class ForgetAfterPlan:
    """The episodic store, where the user forgets ``texts`` right after the dream listed the
    memories: what a forget between the plan step and the consolidate step (or during a crash
    between them) leaves the consolidate step to find."""

    def __init__(self, inner: Any, texts: list[str]) -> None:
        self.inner = inner
        self.texts = texts
        self.forgotten: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, scope: MemoryScope, **kw: Any) -> Any:
        page, cursor = await self.inner.list(scope, **kw)
        ids = [m.id for m in page if m.text in self.texts and m.scope == ACME]
        if ids and not self.forgotten:
            self.forgotten = ids
            await self.inner.forget(ids, scope=ACME)
        return page, cursor


async def dream(plane: MemoryPlane, model: Model | None, path: Path) -> Any:
    wf = dreamer_workflow(plane, model, embedder=HashingEmbedder(), clock=FakeClock())
    async with Runtime(SqliteStore(path / "runs.db"), workflows=[wf], recover=False) as rt:
        done = await rt.run(wf, {"tenant": "acme"})
        assert done.completed, done.error
        audit = await consolidation_audit(rt.store, tenant="acme")
    return done, audit


async def test_a_member_forgotten_after_the_plan_is_left_out_of_the_merge(
    tmp_path: Path, memory_factory: Any, clock: FakeClock
) -> None:
    """On every backend: the Lisbon cluster loses one member (merged from the other two), the
    seats cluster one of its two (left alone: nothing to merge)."""
    plane = await seeded(clock, await memory_factory())
    store = ForgetAfterPlan(plane.episodic, [LISBON[0], SEATS[0]])
    plane.episodic = store  # type: ignore[assignment]
    sent: list[str] = []

    def merge(request: ModelRequest) -> str:
        sent.append(request.messages[-1].content)
        return "MERGED: " + sent[-1].splitlines()[-1].split(". ", 1)[1]

    done, audit = await dream(plane, FunctionModel(merge, name="merger"), tmp_path)
    gone = set(store.forgotten)
    assert len(gone) == 2
    assert len(sent) == 1 and LISBON[0] not in sent[0] and SEATS[0] not in sent[0]
    (merged,) = done.state["merged"]
    assert not gone & set(merged["from"]) and len(merged["from"]) == 2
    new = await plane.episodic.get(merged["id"], scope=ACME)
    assert new is not None and not gone & set(new.metadata["consolidated_from"])
    assert not gone & {a["memory_id"] for a in audit} and len(audit) == 2
    assert {a["text"] for a in audit} == set(LISBON[1:])
    after = await texts(plane, "acme")
    assert SEATS[1] in after and SEATS[0] not in after  # the lone survivor stays as it was
    assert LISBON[0] not in after and not any(LISBON[0] in t for t in after)
    assert sorted((f["consolidated"], len(f["forgotten"])) for f in done.state["forgotten"]) == [
        (False, 1),
        (True, 1),
    ]


async def test_without_a_model_a_forgotten_member_never_stands_for_its_cluster(
    tmp_path: Path,
) -> None:
    """Without a model the best member's text (the newest, here) is the merged memory's: the
    forgotten newest must not come back that way."""
    clock = FakeClock()
    plane = await seeded(clock)
    plane.episodic = ForgetAfterPlan(plane.episodic, [LISBON[2]])  # type: ignore[assignment]
    done, audit = await dream(plane, None, tmp_path)
    after = await texts(plane, "acme")
    assert LISBON[2] not in after
    assert LISBON[1] in after and LISBON[0] not in after  # merged into the newest one left
    assert sorted(len(m["from"]) for m in done.state["merged"]) == [2, 2]
    assert LISBON[2] not in {a["text"] for a in audit} and len(audit) == 4


async def test_a_member_forgotten_while_the_merge_is_written_keeps_the_merge_out(
    tmp_path: Path,
) -> None:
    """The forget lands during the model call (after the check): the merged text may hold the
    forgotten memory, so it is not stored and the cluster is left for the next dream."""
    clock = FakeClock()
    plane = await seeded(clock)
    page, _ = await plane.episodic.list(ACME, limit=100)
    secret = next(m for m in page if m.text == LISBON[0])

    async def merge(request: ModelRequest) -> str:
        if LISBON[0] in request.messages[-1].content:
            assert await plane.forget([secret.id], scope=ACME, journal=False) == 1
        return "MERGED: " + request.messages[-1].content.splitlines()[-1]

    done, audit = await dream(plane, FunctionModel(merge, name="merger"), tmp_path)
    after = await texts(plane, "acme")
    assert not any(LISBON[0] in t for t in after)
    assert set(LISBON[1:]) <= set(after)  # left for the next dream
    assert [len(m["from"]) for m in done.state["merged"]] == [2]  # the seats only
    assert {a["text"] for a in audit} == set(SEATS)
    assert [f["forgotten"] for f in done.state["forgotten"]] == [[secret.id]]
