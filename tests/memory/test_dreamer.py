"""The dreamer: scoring, clustering, dry run versus real, the audit, tenant isolation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tether import Runtime
from tether.core.errors import InvalidInputError
from tether.llm import FunctionModel, HashingEmbedder, ScriptedModel
from tether.llm.embeddings import embed_unit
from tether.llm.types import ModelRequest
from tether.memory import InProcessEpisodic, MemoryScope, Provenance
from tether.memory.consolidation import DreamSettings, plan_dream
from tether.memory.dreamer import dreamer_workflow
from tether.memory.dreamer_audit import consolidation_audit
from tether.memory.plane import MemoryPlane
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock

DAY = 86_400.0
LISBON = [
    "the user lives in lisbon near the river in alfama",
    "the user lives in lisbon near the river alfama district",
    "user lives in lisbon alfama near the river",
]
SEATS = ["the user prefers aisle seats on long flights", "user prefers aisle seats on flights"]
LONE = "printer on floor three jams on tuesdays"


async def seeded(clock: FakeClock, store: Any = None) -> MemoryPlane:
    episodic = store or InProcessEpisodic(embedder=HashingEmbedder(), clock=clock)
    plane = MemoryPlane(episodic)
    old = clock.now() - 40 * DAY
    for tenant in ("acme", "globex"):
        scope = MemoryScope(tenant)
        for i, text in enumerate([*LISBON, *SEATS, LONE]):
            trusted = tenant == "acme" and text in SEATS
            await plane.episodic.add(
                text,
                scope=scope,
                created_at=old + i,
                importance=0.3 + 0.1 * (i % 3),
                provenance=Provenance(source="user", trusted=trusted),
            )
    await plane.episodic.add("the user lives in lisbon near the river", scope=MemoryScope("acme"))
    return plane


def merger() -> FunctionModel:
    def fn(request: ModelRequest) -> str:
        lines = request.messages[-1].content.splitlines()
        return f"MERGED({len(lines)}): " + lines[-1].split(". ", 1)[1]

    return FunctionModel(fn, name="merger")


async def texts(plane: MemoryPlane, tenant: str) -> list[str]:
    page, _ = await plane.episodic.list(MemoryScope(tenant), limit=100)
    return sorted(m.text for m in page)


async def test_dry_run_changes_nothing_and_audits_what_it_would_remove(tmp_path: Path) -> None:
    clock = FakeClock()
    plane = await seeded(clock)
    before = await texts(plane, "acme")
    wf = dreamer_workflow(plane, ScriptedModel([]), embedder=HashingEmbedder(), clock=clock)
    store = SqliteStore(tmp_path / "runs.db")
    async with Runtime(store, workflows=[wf], recover=False) as rt:
        r = await rt.run(wf, {"tenant": "acme", "dry_run": True})
        assert r.completed, r.error
        audit = await consolidation_audit(rt.store, tenant="acme")
    assert await texts(plane, "acme") == before  # nothing merged, nothing removed
    assert sorted(a["text"] for a in audit) == sorted(LISBON + SEATS)
    assert all(a["dry_run"] and a["merged_into"] is None for a in audit)
    assert {a["reason"] for a in audit} == {"merged"}
    # the fresh Lisbon memory is hot (too young), the lone one has no cluster
    assert r.state["plan"]["hot"] == 1 and len(r.state["merged"]) == 2


async def test_real_dream_merges_prunes_audits_and_keeps_tenants_apart(
    tmp_path: Path, memory_factory: Any, clock: FakeClock
) -> None:
    """On every memory backend: in-process, SQLite, PostgreSQL + pgvector."""
    plane = await seeded(clock, await memory_factory())
    globex = await texts(plane, "globex")
    model = merger()
    wf = dreamer_workflow(plane, model, embedder=HashingEmbedder(), clock=clock)
    store = SqliteStore(tmp_path / "runs.db")
    async with Runtime(store, workflows=[wf], recover=False) as rt:
        r = await rt.run(wf, {"tenant": "acme", "goals": ["where does the user live?"]})
        assert r.completed, r.error
        audit = await consolidation_audit(rt.store, tenant="acme", dry_run=False)
        one = await consolidation_audit(rt.store, tenant="acme", memory_id=audit[0]["memory_id"])
        assert await consolidation_audit(rt.store, tenant="globex") == []
        again = await rt.run(wf, {"tenant": "acme"})  # nothing cold is left to merge
        assert again.completed, again.error
        mine = await consolidation_audit(rt.store, tenant="acme", run_id=r.run_id)
        assert await consolidation_audit(rt.store, tenant="acme", run_id=again.run_id) == []
    assert model.calls == 2
    after = await texts(plane, "acme")
    assert "MERGED(3): user lives in lisbon alfama near the river" in after
    assert "MERGED(2): user prefers aisle seats on flights" in after
    assert LONE in after and "the user lives in lisbon near the river" in after
    assert not set(LISBON + SEATS) & set(after)
    assert await texts(plane, "globex") == globex  # the other tenant is untouched
    assert len(audit) == 5 and one == [audit[0]] and mine == audit
    new_ids = {m["id"] for m in r.state["merged"]}
    assert {a["merged_into"] for a in audit} == new_ids
    for m in r.state["merged"]:
        got = await plane.episodic.get(m["id"], scope=MemoryScope("acme"))
        assert got is not None and got.provenance.source == "consolidation"
        assert got.metadata["consolidated_from"] == m["from"]
        assert got.provenance.trusted == got.text.startswith("MERGED(2)")  # all members trusted
        assert await plane.episodic.get(m["id"], scope=MemoryScope("globex")) is None


async def test_prune_below_removes_cold_singletons(tmp_path: Path) -> None:
    clock = FakeClock()
    plane = await seeded(clock)
    wf = dreamer_workflow(plane, None, embedder=HashingEmbedder(), clock=clock)
    settings = {"prune_below": 0.2, "min_cluster": 4}
    async with Runtime(SqliteStore(tmp_path / "r.db"), workflows=[wf], recover=False) as rt:
        r = await rt.run(wf, {"tenant": "acme", "settings": settings})
        audit = await consolidation_audit(rt.store, tenant="acme")
    assert r.completed
    assert {a["reason"] for a in audit} == {"stale"} and len(audit) == 6
    assert await texts(plane, "acme") == ["the user lives in lisbon near the river"]


async def test_bad_input_fails_the_dream_with_a_reason(tmp_path: Path) -> None:
    plane = MemoryPlane(InProcessEpisodic(embedder=HashingEmbedder()))
    wf = dreamer_workflow(plane, None, embedder=HashingEmbedder())
    async with Runtime(SqliteStore(tmp_path / "r.db"), workflows=[wf], recover=False) as rt:
        missing = await rt.run(wf, {"goals": []})
        bad = await rt.run(wf, {"tenant": "acme", "settings": {"similarity": 3}})
        unknown = await rt.run(wf, {"tenant": "acme", "settings": {"colour": "red"}})
    for r in (missing, bad, unknown):
        assert not r.completed and r.error is not None
        assert r.error["type"] == "InvalidInputError"
    assert "tenant" in missing.error["message"] and "similarity" in bad.error["message"]


async def test_scores_weigh_recency_frequency_and_goals() -> None:
    from tether.memory.types import Memory

    emb = HashingEmbedder()
    now = 1_000 * DAY
    scope = MemoryScope("t")
    mems = [
        Memory("a", "deploy the billing service", scope, created_at=now - 60 * DAY),
        Memory(
            "b",
            "deploy the billing service",
            scope,
            created_at=now - 60 * DAY,
            last_accessed_at=now - DAY,
            access_count=9,
        ),
        Memory("c", "lunch menu on friday", scope, created_at=now - 60 * DAY),
    ]
    vectors = await embed_unit(emb, [m.text for m in mems])
    goals = await embed_unit(emb, ["billing service deploy"])
    settings = DreamSettings(keep_score=0.3, prune_below=0.3, similarity=0.99)
    plan = plan_dream(mems, vectors, goals, now, settings)
    assert plan.hot == 1  # b: recently and often recalled
    assert [s.memory.id for s in plan.prunes] == ["a", "c"]
    a, c = plan.prunes
    assert a.relevance > c.relevance and a.recency == pytest.approx(0.5**2)
    with pytest.raises(InvalidInputError):
        DreamSettings(min_cluster=1)


async def test_a_scheduled_dream_runs_on_its_own(tmp_path: Path) -> None:
    import asyncio

    from tether.core.lifecycle import RunStatus

    clock = FakeClock()
    plane = await seeded(clock)
    wf = dreamer_workflow(plane, None, embedder=HashingEmbedder(), clock=clock)
    async with Runtime(SqliteStore(tmp_path / "r.db"), workflows=[wf], poll_interval=0.05) as rt:
        sched: Any = await rt.schedule("* * * * * *", wf, {}, name="dream-acme", tenant="acme")
        assert sched.workflow == wf.name and (sched.input, sched.tenant) == ({}, "acme")
        done: list[Any] = []
        for _ in range(1200):  # a hang guard only: it fires within a second or two
            runs = await rt.store.list_runs(workflow=wf.name)
            done = [r for r in runs if r.status is RunStatus.COMPLETED]
            if done:
                break
            await asyncio.sleep(0.05)
        assert done, "the scheduled dream never completed"
        assert done[0].tenant == "acme"  # its model calls count against acme's quota
        audit = await consolidation_audit(rt.store, tenant="acme")
    assert len(audit) >= 5 and {a["reason"] for a in audit} == {"merged"}


async def test_a_tenants_run_dreams_for_that_tenant_only(tmp_path: Path) -> None:
    """Before: the input named the tenant, so a run of tenant acme (an acme API key over
    HTTP) could consolidate, and remove, globex's memories by saying {'tenant': 'globex'}."""
    clock = FakeClock()
    plane = await seeded(clock)
    globex = await texts(plane, "globex")
    wf = dreamer_workflow(plane, None, embedder=HashingEmbedder(), clock=clock)
    async with Runtime(SqliteStore(tmp_path / "r.db"), workflows=[wf], recover=False) as rt:
        reach = await rt.run(wf, {"tenant": "globex"}, tenant="acme")
        assert reach.status.value == "FAILED"
        assert "belongs to tenant 'acme'" in reach.error["message"]
        assert await texts(plane, "globex") == globex
        own = await rt.run(wf, {"dry_run": True}, tenant="acme")  # no tenant in the input
        assert own.completed, own.error
        assert await consolidation_audit(rt.store, tenant="acme")
        assert await consolidation_audit(rt.store, tenant="globex") == []
        same = await rt.run(wf, {"tenant": "acme", "dry_run": True}, tenant="acme")
        assert same.completed, same.error


class FlakyForget:
    """The episodic store, whose ``forget`` fails once after the merged memory was added:
    what a crash between the add and the journal's record leaves behind."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failures = 1
        self.adds = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def add(self, *args: Any, **kw: Any) -> Any:
        self.adds += 1
        return await self.inner.add(*args, **kw)

    async def forget(self, ids: Any, *, scope: Any) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the memory store went away")
        return int(await self.inner.forget(ids, scope=scope))


async def test_a_retried_merge_finds_its_memory_instead_of_adding_it_twice(tmp_path: Path) -> None:
    clock = FakeClock()
    plane = await seeded(clock)
    flaky = FlakyForget(plane.episodic)
    plane.episodic = flaky  # type: ignore[assignment]
    model = merger()
    wf = dreamer_workflow(plane, model, embedder=HashingEmbedder(), clock=clock)
    async with Runtime(SqliteStore(tmp_path / "r.db"), workflows=[wf], recover=False) as rt:
        r = await rt.run(wf, {"tenant": "acme"})
        audit = await consolidation_audit(rt.store, tenant="acme")
    assert r.completed, r.error
    after = await texts(plane, "acme")
    merged = [t for t in after if t.startswith("MERGED")]
    assert len(merged) == 2 and flaky.adds == 2  # the retry found its merged memory
    assert model.calls == 2  # the journaled merge texts were replayed, not asked again
    assert len(audit) == 5


def test_clusters_fill_up_to_max_cluster_then_start_another() -> None:
    import numpy as np

    from tether.memory.consolidation import Scored, cluster
    from tether.memory.types import Memory

    a, b = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    vectors = np.stack([a, a, b, a, a, b])
    items = [Scored(Memory(str(i), "t", MemoryScope("t")), 0.1, 1, 1, 1) for i in range(6)]
    groups = cluster(items, vectors, DreamSettings(max_cluster=3, similarity=0.9))
    assert [[x.memory.id for x in g] for g in groups] == [["0", "1", "3"], ["2", "5"], ["4"]]
    assert cluster([], vectors[:0], DreamSettings()) == []
