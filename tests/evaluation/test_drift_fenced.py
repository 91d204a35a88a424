"""An after-run drift check is a run event written by a fenced commit: a checker that lost its
lease (to another worker or checker) writes nothing (memory, SQLite, PostgreSQL), a running run is not checked, and the
latest check stands for the run (per run from its events, per workflow from the index)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from tether import Runtime
from tether.core.errors import LeaseLostError, RunStateError
from tether.evaluation import DriftMonitor, check_drift, drift_flags
from tether.store.evaluation_log import EvaluationLogStore
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

from ..store.conftest import BACKENDS, pg_dsn, pg_schema  # noqa: F401 (fixtures)
from .test_drift import FAITHFUL, OFF_TOPIC, PLAN, PLAN_AGAIN, QUESTION, KeywordEmbedder, helpdesk

CHECKED = "drift_checked"


@pytest.fixture(params=BACKENDS)
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    clock = FakeClock()
    s: RunStore
    if request.param == "memory":
        s = MemoryStore(clock=clock)
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "runs.db", clock=clock)
    else:
        from tether.store.postgres import PostgresStore

        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
        s = PostgresStore(dsn, schema=schema, clock=clock, pool_size=2)
    async with Runtime(s, clock=clock) as runtime:
        yield runtime


@pytest.fixture
def store(rt: Runtime) -> RunStore:
    return rt.store


def clock_of(store: RunStore) -> FakeClock:
    clock = store.clock  # type: ignore[attr-defined]
    assert isinstance(clock, FakeClock)
    return clock


async def finished(rt: Runtime, answer: str) -> str:
    res = await rt.run(helpdesk([answer], [PLAN, PLAN_AGAIN]), {"question": QUESTION})
    assert res.completed
    return res.run_id


async def checks(store: RunStore, run_id: str) -> list[dict[str, object]]:
    return [e.data for e in await store.list_events(run_id) if e.type == CHECKED]


async def index(store: RunStore, run_id: str) -> list[tuple[str, str]]:
    assert isinstance(store, EvaluationLogStore)
    return [(r.kind, r.key) for r in await store.list_flags(run_id=run_id)]


async def test_the_result_is_an_event_on_the_run(rt: Runtime, store: RunStore) -> None:
    run_id = await finished(rt, OFF_TOPIC)
    before = await store.get_run(run_id)
    report = await check_drift(store, run_id, monitor=DriftMonitor(KeywordEmbedder()))
    assert report.drifted and [f.kind for f in report.flags] == ["drift.goal_output"]

    (data,) = await checks(store, run_id)
    assert data["drifted"] is True
    goal = data["goal_output"]
    assert isinstance(goal, dict)
    assert (goal["similarity"], goal["threshold"], goal["right"]) == (0.0, 0.7, OFF_TOPIC)
    assert [p["drifted"] for p in data["plans"]] == [False]  # type: ignore[attr-defined]
    after = await store.get_run(run_id)
    assert after.status == before.status and after.owner is None  # its lease given back
    assert after.event_seq == before.event_seq + 1
    (flag,) = await drift_flags(store, run_id=run_id)
    assert (flag.kind, flag.key, flag.score, flag.data["seq"]) == (
        "drift.goal_output", "final", 0.0, after.event_seq,
    )  # fmt: skip
    assert await index(store, run_id) == [("drift.goal_output", "final")]
    assert len(await drift_flags(store, workflow="helpdesk")) == 1

    # checked again, reading an output that stays on the goal: the latest check stands
    again = await check_drift(
        store, run_id, monitor=DriftMonitor(KeywordEmbedder()), output=lambda s: "a password"
    )
    assert not again.drifted
    assert len(await checks(store, run_id)) == 2
    assert await drift_flags(store, run_id=run_id) == []
    assert await drift_flags(store, workflow="helpdesk") == []  # the index row was rewritten


async def test_a_stale_lease_writer_is_refused(rt: Runtime, store: RunStore) -> None:
    run_id = await finished(rt, OFF_TOPIC)
    clock = clock_of(store)
    stale = await store.acquire_lease(run_id, "worker-a", 10.0)
    assert stale is not None
    clock.advance(11.0)  # worker-a paused past its lease; worker-b takes the run
    fresh = await store.acquire_lease(run_id, "worker-b", 10.0)
    assert fresh is not None and fresh.token > stale.token
    monitor = DriftMonitor(KeywordEmbedder())

    with pytest.raises(LeaseLostError):
        await check_drift(store, run_id, monitor=monitor, token=stale.token)
    assert await checks(store, run_id) == []
    assert await index(store, run_id) == []
    assert await drift_flags(store, run_id=run_id) == []

    report = await check_drift(store, run_id, monitor=monitor, token=fresh.token)
    assert report.drifted and len(await checks(store, run_id)) == 1
    run = await store.get_run(run_id)
    assert (run.owner, run.lease_token) == ("worker-b", fresh.token)  # the caller's lease stays


class TakenOverMidway:
    """An embedder slow enough for the check's lease to expire while it works: when asked, the
    clock passes the lease and another worker takes the run."""

    name = "slow"
    dimensions = 2

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.inner = KeywordEmbedder()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        clock_of(self.store).advance(31.0)
        assert await self.store.acquire_lease(self.run_id, "worker-b", 30.0) is not None
        return await self.inner.embed(texts)


async def test_a_check_that_loses_its_lease_midway_writes_nothing(
    rt: Runtime, store: RunStore
) -> None:
    run_id = await finished(rt, OFF_TOPIC)
    monitor = DriftMonitor(TakenOverMidway(store, run_id))
    with pytest.raises(LeaseLostError):
        await check_drift(store, run_id, monitor=monitor, ttl=30.0)
    assert await checks(store, run_id) == []
    assert await index(store, run_id) == []
    assert (await store.get_run(run_id)).owner == "worker-b"  # its lease was left alone


async def test_a_run_still_executing_or_held_is_not_checked(rt: Runtime, store: RunStore) -> None:
    monitor = DriftMonitor(KeywordEmbedder())
    queued = await rt.submit(helpdesk([FAITHFUL], []), {"question": QUESTION})
    with pytest.raises(RunStateError) as err:
        await check_drift(store, queued.run_id, monitor=monitor)
    status = (await store.get_run(queued.run_id)).status.value  # queued: no worker runs here
    assert f"is {status}:" in str(err.value) and "token=" in str(err.value)
    assert await checks(store, queued.run_id) == []

    run_id = await finished(rt, FAITHFUL)
    assert await store.acquire_lease(run_id, "another-check", 60.0) is not None
    with pytest.raises(RunStateError) as held:
        await check_drift(store, run_id, monitor=monitor)
    assert "another-check" in str(held.value)
