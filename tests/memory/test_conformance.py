"""One conformance suite for every memory backend: in-process, SQLite, PostgreSQL+pgvector."""

from __future__ import annotations

import itertools
import random

import pytest

from tests.memory.conftest import MemoryFactory
from tether.core.errors import InvalidInputError
from tether.memory import (
    KEYWORD_ONLY,
    VECTOR_ONLY,
    MemoryScope,
    NewMemory,
    Provenance,
    Ranking,
)
from tether.testing import FakeClock

DAY = 86_400.0
ACME = MemoryScope("acme")


async def test_add_get_list_count_forget(memory_factory: MemoryFactory, clock: FakeClock) -> None:
    m = await memory_factory()
    prov = Provenance(source="tool", trusted=False, run_id="r1", step=3, tool="search_web")
    a = await m.add(
        "the deploy failed with ERR_CONN_RESET",
        scope=ACME,
        metadata={"kind": "incident", "n": 1},
        importance=0.9,
        provenance=prov,
    )
    clock.advance(1)
    b = await m.add("the user prefers window seats", scope=ACME)
    assert a.id != b.id
    got = await m.get(a.id, scope=ACME)
    assert got is not None
    assert got.text == a.text and got.metadata == {"kind": "incident", "n": 1}
    assert got.importance == 0.9 and got.provenance == prov and got.scope == ACME
    assert got.created_at == clock.now() - 1 and got.access_count == 0
    assert await m.count(ACME) == 2
    page, cursor = await m.list(ACME, limit=10)
    assert [x.id for x in page] == [a.id, b.id] and cursor is None
    assert await m.forget([a.id, "no-such-id"], scope=ACME) == 1
    assert await m.get(a.id, scope=ACME) is None
    assert await m.count(ACME) == 1
    assert await m.forget([a.id], scope=ACME) == 0
    hits = await m.search("deploy ERR_CONN_RESET", scope=ACME)
    assert a.id not in [h.memory.id for h in hits]


async def test_add_many_and_paging(memory_factory: MemoryFactory, clock: FakeClock) -> None:
    m = await memory_factory()
    items = [NewMemory(f"note number {i}", importance=0.5) for i in range(23)]
    added = await m.add_many(items, scope=ACME)  # one timestamp for all: ties broken by id
    assert len(added) == 23
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await m.list(ACME, limit=5, cursor=cursor)
        seen += [x.id for x in page]
        if cursor is None:
            break
    assert seen == sorted(x.id for x in added)
    with pytest.raises(InvalidInputError):
        await m.list(ACME, cursor="garbage")


async def test_bad_input_is_refused_and_writes_nothing(memory_factory: MemoryFactory) -> None:
    m = await memory_factory()
    for kwargs in (
        {"text": ""},
        {"text": "   "},
        {"text": "x", "importance": 1.5},
        {"text": "x", "importance": float("nan")},
        {"text": "x", "metadata": {"a": object()}},
        {"text": "x", "metadata": {1: "a"}},
        {"text": "a\x00b"},
        {"text": "x" * 100_001},
    ):
        with pytest.raises(InvalidInputError):
            await m.add(scope=ACME, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await m.add_many([NewMemory("ok"), NewMemory("")], scope=ACME)
    with pytest.raises(InvalidInputError):
        await m.add_many([NewMemory("other", scope=MemoryScope("globex"))], scope=ACME)
    with pytest.raises(InvalidInputError):
        await m.search("x", scope=ACME, k=0)
    with pytest.raises(InvalidInputError):
        await m.search("x", scope="acme")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await m.forget("a-single-id", scope=ACME)
    with pytest.raises(InvalidInputError):
        MemoryScope("")
    assert await m.count(ACME) == 0
    assert await m.search("", scope=ACME) == []


async def test_search_fuses_keywords_and_vectors(
    memory_factory: MemoryFactory, clock: FakeClock
) -> None:
    m = await memory_factory()
    texts = [
        "deploy of billing failed with error E4021 at the gateway",
        "the user prefers aisle seats on long flights",
        "billing invoices are sent on the first of the month",
        "gateway timeout while calling the payments provider",
    ]
    added = [await m.add(t, scope=ACME) for t in texts]
    hits = await m.search("E4021", scope=ACME, k=3)
    assert hits[0].memory.id == added[0].id
    assert hits[0].keyword_rank == 1
    assert hits[0].score > 0
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    kw = await m.search("E4021", scope=ACME, k=3, ranking=KEYWORD_ONLY)
    assert [h.memory.id for h in kw] == [added[0].id]  # only one memory has the word
    assert kw[0].vector_rank is None
    vec = await m.search("billing gateway", scope=ACME, k=4, ranking=VECTOR_ONLY)
    assert vec and all(h.keyword_rank is None for h in vec)
    assert len(await m.search("billing", scope=ACME, k=1)) == 1


async def test_search_records_access(memory_factory: MemoryFactory, clock: FakeClock) -> None:
    m = await memory_factory()
    a = await m.add("remember the blue door code 4411", scope=ACME)
    clock.advance(10)
    hits = await m.search("door code 4411", scope=ACME)
    assert hits[0].memory.access_count == 1
    assert hits[0].memory.last_accessed_at == clock.now()
    await m.search("door code 4411", scope=ACME, record_access=False)
    got = await m.get(a.id, scope=ACME)
    assert got is not None and got.access_count == 1 and got.last_accessed_at == clock.now()


async def test_scope_filters(memory_factory: MemoryFactory) -> None:
    m = await memory_factory()
    s1 = MemoryScope("acme", agent="planner", run_id="r1", thread_id="t1")
    s2 = MemoryScope("acme", agent="planner", run_id="r2", thread_id="t2")
    s3 = MemoryScope("acme", agent="coder", run_id="r3")
    for s in (s1, s2, s3):
        await m.add(f"shared words about the migration plan {s.run_id}", scope=s)
    tenant = await m.search("migration plan", scope=ACME, k=10)
    assert len(tenant) == 3
    planner = await m.search("migration plan", scope=MemoryScope("acme", agent="planner"))
    assert {h.memory.scope.run_id for h in planner} == {"r1", "r2"}
    thread = await m.search("migration plan", scope=MemoryScope("acme", thread_id="t2"))
    assert [h.memory.scope for h in thread] == [s2]
    assert await m.count(MemoryScope("acme", agent="coder")) == 1
    page, _ = await m.list(MemoryScope("acme", run_id="r1"))
    assert [x.scope for x in page] == [s1]
    # get/forget through a narrower scope that does not cover the memory: as if absent
    r1 = page[0]
    assert await m.get(r1.id, scope=MemoryScope("acme", agent="coder")) is None
    assert await m.forget([r1.id], scope=MemoryScope("acme", agent="coder")) == 0
    assert await m.get(r1.id, scope=s1) is not None


async def test_tenant_isolation_property(memory_factory: MemoryFactory, clock: FakeClock) -> None:
    """Several tenants write overlapping texts and facts; no search, listing, get, forget, KG
    query or hop ever returns another tenant's memory or fact (None is its own tenant)."""
    rng = random.Random(1313)
    m = await memory_factory(functional_relations={"status"})
    tenants: list[str | None] = ["acme", "globex", "initech", None]
    words = [
        "invoice",
        "deploy",
        "gateway",
        "refund",
        "outage",
        "E4021",
        "ERR_TIMEOUT",
        "alice",
        "bob",
        "paris",
    ]
    owned: dict[str | None, set[str]] = {t: set() for t in tenants}
    facts: dict[str | None, set[str]] = {t: set() for t in tenants}
    for _ in range(60):
        t = rng.choice(tenants)
        text = " ".join(rng.choices(words, k=5))
        scope = MemoryScope(t, agent=rng.choice([None, "a1", "a2"]))
        owned[t].add((await m.add(text, scope=scope)).id)
        clock.advance(1)
        f = await m.kg.assert_fact(
            rng.choice(words),
            rng.choice(["depends_on", "status", "knows"]),
            rng.choice(words),
            scope=MemoryScope(t),
        )
        facts[t].add(f.id)
    for t in tenants:
        scope = MemoryScope(t)
        for _ in range(8):
            q = " ".join(rng.choices(words, k=2))
            hits = await m.search(q, scope=scope, k=50)
            assert {h.memory.id for h in hits} <= owned[t]
            assert all(h.memory.scope.tenant == t for h in hits)
        listed, cursor = await m.list(scope, limit=1000)
        assert {x.id for x in listed} == owned[t] and cursor is None
        assert await m.count(scope) == len(owned[t])
        all_facts = await m.kg.facts(scope=scope, include_history=True)
        assert {f.id for f in all_facts} <= facts[t]
        for w in words:
            for hop in await m.kg.hops(w, scope=scope, depth=3, direction="both"):
                assert all(f.id in facts[t] for f in hop.path)
        for other in tenants:
            if other == t:
                continue
            some = sorted(owned[other])[:5]
            for i in some:
                assert await m.get(i, scope=scope) is None
            assert await m.forget(some, scope=scope) == 0
            assert await m.kg.forget_facts(sorted(facts[other]), scope=scope) == 0
    assert sum([await m.count(MemoryScope(t)) for t in tenants]) == 60


async def test_decay_reorders_equal_matches_by_age(
    memory_factory: MemoryFactory, clock: FakeClock
) -> None:
    m = await memory_factory()
    old = await m.add("the staging cluster ran out of disk", scope=ACME, importance=0.7)
    clock.advance(90 * DAY)
    new = await m.add("the staging cluster ran out of disk", scope=ACME, importance=0.5)
    no_decay = Ranking(half_life=None)
    ranked = await m.search("staging cluster disk", scope=ACME, ranking=no_decay)
    assert [h.memory.id for h in ranked] == [old.id, new.id]  # importance wins without decay
    ranked = await m.search("staging cluster disk", scope=ACME)
    assert [h.memory.id for h in ranked] == [new.id, old.id]  # 90 days at a 30-day half-life
    assert ranked[0].score > 2 * ranked[1].score
    # "now" is a parameter: asked as of the day the old one was written, the new one is
    # from the future (counts as fresh) and both are equally recent
    early = await m.search("staging cluster disk", scope=ACME, now=clock.now() - 90 * DAY)
    assert [h.memory.id for h in early] == [old.id, new.id]


async def test_kg_supersession_history_and_time_travel(
    memory_factory: MemoryFactory, clock: FakeClock
) -> None:
    m = await memory_factory(functional_relations={"lives_in"})
    kg = m.kg
    t0 = clock.now()
    paris = await kg.assert_fact("alice", "lives_in", "Paris", scope=ACME)
    again = await kg.assert_fact("alice", "lives_in", "Paris", scope=ACME)
    assert again.id == paris.id  # upsert: the same valid fact is kept
    clock.advance(10 * DAY)
    berlin = await kg.assert_fact(
        "alice", "lives_in", "Berlin", scope=ACME, provenance=Provenance(source="user")
    )
    now = await kg.facts(scope=ACME, subject="alice", relation="lives_in")
    assert [f.object for f in now] == ["Berlin"]
    before = await kg.facts(scope=ACME, subject="alice", relation="lives_in", at=t0 + DAY)
    assert [f.object for f in before] == ["Paris"]
    history = await kg.history("alice", "lives_in", scope=ACME)
    assert [f.object for f in history] == ["Paris", "Berlin"]
    assert history[0].valid_to == berlin.valid_from and history[0].superseded_by == berlin.id
    assert history[1].valid_to is None and history[1].superseded_by is None
    # a non-functional relation accumulates
    await kg.assert_fact("alice", "speaks", "French", scope=ACME)
    await kg.assert_fact("alice", "speaks", "German", scope=ACME)
    spoken = await kg.facts(scope=ACME, subject="alice", relation="speaks")
    assert sorted(f.object for f in spoken) == ["French", "German"]
    # functional=True on the call overrides the configuration
    await kg.assert_fact("alice", "speaks", "Spanish", scope=ACME, functional=True)
    spoken = await kg.facts(scope=ACME, subject="alice", relation="speaks")
    assert [f.object for f in spoken] == ["Spanish"]
    # retraction ends validity, keeps the row
    clock.advance(DAY)
    assert await kg.retract("alice", "lives_in", "Berlin", scope=ACME) == 1
    assert await kg.facts(scope=ACME, subject="alice", relation="lives_in") == []
    assert len(await kg.history("alice", "lives_in", scope=ACME)) == 2
    assert [
        f.object for f in await kg.facts(scope=ACME, at=t0 + 11 * DAY - 1, relation="lives_in")
    ] == ["Berlin"]
    # a back-dated fact: valid_from in the past
    await kg.assert_fact("bob", "lives_in", "Rome", scope=ACME, valid_from=t0 - 100 * DAY)
    assert [f.object for f in await kg.facts(scope=ACME, subject="bob", at=t0 - 50 * DAY)] == [
        "Rome"
    ]
    with pytest.raises(InvalidInputError):
        await kg.assert_fact("", "lives_in", "x", scope=ACME)
    with pytest.raises(InvalidInputError):
        await kg.hops("x", scope=ACME, depth=0)


async def test_kg_multi_hop(memory_factory: MemoryFactory, clock: FakeClock) -> None:
    """ "Tools that depend on X (directly or not) and failed this week"."""
    m = await memory_factory(functional_relations={"status"})
    kg = m.kg
    week_ago = clock.now() - 7 * DAY
    for tool, dep in [
        ("billing_api", "postgres"),
        ("invoice_job", "billing_api"),
        ("mailer", "invoice_job"),
        ("search_api", "elastic"),
        ("postgres", "disk"),
    ]:
        await kg.assert_fact(tool, "depends_on", dep, scope=ACME)
    await kg.assert_fact("mailer", "status", "failed", scope=ACME, valid_from=week_ago - 14 * DAY)
    await kg.assert_fact("mailer", "status", "ok", scope=ACME, valid_from=week_ago - 13 * DAY)
    await kg.assert_fact("invoice_job", "status", "failed", scope=ACME, valid_from=week_ago + DAY)
    await kg.assert_fact("search_api", "status", "failed", scope=ACME, valid_from=week_ago + DAY)
    clock.advance(1)
    hops = await kg.hops("postgres", scope=ACME, relations=["depends_on"], depth=3, direction="in")
    assert [(h.node, h.depth) for h in hops] == [
        ("billing_api", 1),
        ("invoice_job", 2),
        ("mailer", 3),
    ]
    mailer = hops[2]
    assert [(f.subject, f.object) for f in mailer.path] == [
        ("billing_api", "postgres"),
        ("invoice_job", "billing_api"),
        ("mailer", "invoice_job"),
    ]
    dependants = {h.node for h in hops}
    failed = await kg.facts(scope=ACME, relation="status", object="failed")
    this_week = {f.subject for f in failed if f.valid_from >= week_ago} & dependants
    assert this_week == {"invoice_job"}
    # out-edges, a depth bound, relation filter and "both"
    out = await kg.hops("mailer", scope=ACME, relations=["depends_on"], depth=2)
    assert [(h.node, h.depth) for h in out] == [("invoice_job", 1), ("billing_api", 2)]
    both = await kg.hops(
        "billing_api", scope=ACME, relations=["depends_on"], depth=1, direction="both"
    )
    assert sorted(h.node for h in both) == ["invoice_job", "postgres"]
    # a cycle ends the walk instead of looping
    await kg.assert_fact("disk", "depends_on", "billing_api", scope=ACME)
    cyc = await kg.hops("billing_api", scope=ACME, relations=["depends_on"], depth=10)
    assert [(h.node, h.depth) for h in cyc] == [("postgres", 1), ("disk", 2)]
    # time travel in hops: before any of it was recorded, nothing is reachable
    assert await kg.hops("postgres", scope=ACME, direction="in", at=week_ago - 30 * DAY) == []


async def test_kg_scope_and_forget(memory_factory: MemoryFactory) -> None:
    m = await memory_factory()
    kg = m.kg
    a1 = MemoryScope("acme", agent="a1")
    f = await kg.assert_fact("x", "rel", "y", scope=a1)
    await kg.assert_fact("x", "rel", "z", scope=MemoryScope("acme", agent="a2"))
    assert [g.object for g in await kg.facts(scope=a1, subject="x")] == ["y"]
    assert len(await kg.facts(scope=ACME, subject="x")) == 2
    assert await kg.forget_facts([f.id], scope=MemoryScope("acme", agent="a2")) == 0
    assert await kg.forget_facts([f.id], scope=ACME) == 1
    assert [g.object for g in await kg.facts(scope=ACME, subject="x")] == ["z"]
