"""``DriftWatch`` on a real SQLite file: every completed run of the watched workflows is checked
once (real MiniLM), never twice (a second pass, a restarted watch on a reopened store, two
watches at once), a run still executing when the watch starts is checked once it completes,
runs that completed before the first start are left alone unless ``since`` reaches them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.core.errors import ConfigurationError
from tether.core.lifecycle import RunStatus
from tether.evaluation import DriftMonitor, DriftWatch, drift_flags
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

from ..store.conftest import pg_dsn, pg_schema  # noqa: F401 (fixtures)
from .test_drift import FAITHFUL, OFF_TOPIC, PLAN, PLAN_AGAIN, QUESTION, KeywordEmbedder, helpdesk

CHECKED = "drift_checked"
GUARD = 60.0
"""Hang guard (seconds) for what a test waits on."""


async def checks(store: RunStore, run_id: str) -> int:
    return [e.type for e in await store.list_events(run_id)].count(CHECKED)


async def test_each_completed_run_is_checked_once_across_restarts(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "runs.db"
    store = SqliteStore(db, clock=clock)
    monitor = DriftMonitor()  # all-MiniLM-L6-v2, threshold 0.7
    async with Runtime(store, clock=clock) as rt:
        before = await rt.run(helpdesk([OFF_TOPIC], []), {"question": QUESTION})
        clock.advance(60)
        watch = DriftWatch(store, ["helpdesk"], monitor=monitor, clock=clock)
        assert await watch.poll() == []  # the run before the first start is not checked
        good = await rt.run(helpdesk([FAITHFUL], [PLAN, PLAN_AGAIN]), {"question": QUESTION})
        bad = await rt.run(helpdesk([OFF_TOPIC], []), {"question": QUESTION})
        other = Graph(Gated, name="other")
        other.add_node("n", lambda s: {"answer": OFF_TOPIC})
        other.add_edge(START, "n")
        other.add_edge("n", END)
        skipped = await rt.run(other.compile(), {"question": QUESTION})  # not watched
        reports = {r.run_id: r for r in await watch.poll()}
        assert set(reports) == {good.run_id, bad.run_id}
        assert not reports[good.run_id].drifted and len(reports[good.run_id].plans) == 1
        assert reports[bad.run_id].drifted
        assert await watch.poll() == []  # a second pass checks nothing again
        assert watch.checked == 2
        flags = await drift_flags(store, workflow="helpdesk")
        assert [(f.run_id, f.kind) for f in flags] == [(bad.run_id, "drift.goal_output")]
        assert await checks(store, before.run_id) == 0 and await checks(store, skipped.run_id) == 0

    store = SqliteStore(db, clock=clock)  # a restarted process: a new store, a new watch
    clock.advance(60)
    async with Runtime(store, clock=clock) as rt:
        tokens = [(await store.get_run(r.run_id)).lease_token for r in (good, bad)]
        again = DriftWatch(store, ["helpdesk"], monitor=monitor, clock=clock)
        assert await again.poll() == [] and again.checked == 0
        assert [await checks(store, r.run_id) for r in (good, bad)] == [1, 1]
        # it saw them checked by a read: it took no lease (a lease bumps the token)
        assert [(await store.get_run(r.run_id)).lease_token for r in (good, bad)] == tokens
        late = await rt.run(helpdesk([OFF_TOPIC], []), {"question": QUESTION})
        (report,) = await again.poll()
        assert report.run_id == late.run_id and report.drifted
        assert len(await drift_flags(store, workflow="helpdesk")) == 2


class Gated(TypedDict, total=False):
    question: str
    answer: str


def gated(gate: asyncio.Event, entered: asyncio.Event) -> Any:
    async def answer(state: Gated, ctx: RunContext) -> dict[str, Any]:
        entered.set()
        await gate.wait()
        return {"answer": "reset the password from the login page"}

    g = Graph(Gated, name="slowdesk")
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g.compile()


async def test_a_run_executing_at_the_first_start_is_checked_once_it_completes(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    store = SqliteStore(tmp_path / "runs.db", clock=clock)
    monitor = DriftMonitor(KeywordEmbedder())
    gate, entered = asyncio.Event(), asyncio.Event()
    async with Runtime(store, clock=clock) as rt:
        old = await rt.run(helpdesk([OFF_TOPIC], []), {"question": QUESTION})
        slow = asyncio.create_task(rt.run(gated(gate, entered), {"question": QUESTION}))
        await asyncio.wait_for(entered.wait(), GUARD)
        clock.advance(5)  # the watch starts well after both runs were created (margin 0)
        desks = ["helpdesk", "slowdesk"]
        watch = DriftWatch(store, desks, monitor=monitor, clock=clock, margin=0)
        assert await watch.poll() == []
        gate.set()
        res = await asyncio.wait_for(slow, GUARD)
        (report,) = await watch.poll()
        assert report.run_id == res.run_id and not report.drifted
        assert await checks(store, old.run_id) == 0
        # since=0 reaches back past the mark: the old run now, the slow one not twice
        history = DriftWatch(store, desks, monitor=monitor, clock=clock, since=0)
        assert [r.run_id for r in await history.poll()] == [old.run_id]
        assert [await checks(store, r) for r in (old.run_id, res.run_id)] == [1, 1]


class YieldingEmbedder(KeywordEmbedder):
    """Gives the loop away while it embeds, as MiniLM in its thread does: two watches
    interleave, each holding a run's lease while the other looks at it."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return await super().embed(texts)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_two_watches_at_once_check_each_run_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store: RunStore
    if backend == "sqlite":
        store = SqliteStore(tmp_path / "runs.db")
    else:
        from tether.store.postgres import PostgresStore

        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
        store = PostgresStore(dsn, schema=schema, pool_size=4)
    await store.setup()
    monitor = DriftMonitor(YieldingEmbedder())
    one, two = (DriftWatch(store, ["helpdesk"], monitor=monitor) for _ in range(2))
    await asyncio.gather(one.poll(), two.poll())  # started: later runs are theirs
    async with Runtime(store) as rt:
        runs = [
            await rt.run(helpdesk([answer], []), {"question": QUESTION})
            for answer in (FAITHFUL, OFF_TOPIC, FAITHFUL, OFF_TOPIC)
        ]
        for _ in range(2):  # a run one watch held, the other finds checked on its next pass
            await asyncio.gather(one.poll(), two.poll())
        assert one.checked + two.checked == 4 and one.checked > 0 and two.checked > 0
        assert [await checks(store, r.run_id) for r in runs] == [1, 1, 1, 1]


async def test_other_statuses_and_a_run_that_cannot_be_checked() -> None:
    store = MemoryStore()
    monitor = DriftMonitor(KeywordEmbedder())
    desks = ["helpdesk", "faildesk"]
    watch = DriftWatch(store, desks, monitor=monitor, statuses=[RunStatus.FAILED], since=0)

    def fails(state: Gated) -> dict[str, Any]:
        raise RuntimeError("boom")

    g = Graph(Gated, name="faildesk")
    g.add_node("answer", fails)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    async with Runtime(store) as rt:
        done = await rt.run(helpdesk([FAITHFUL], []), {"question": QUESTION})
        failed = await rt.run(g.compile(), {"question": QUESTION})
    assert failed.status is RunStatus.FAILED
    assert [r.run_id for r in await watch.poll()] == [failed.run_id]
    assert await checks(store, done.run_id) == 0
    # watching COMPLETED runs, a run that failed is let go, not read again and again
    completed = DriftWatch(store, desks, monitor=monitor, since=0)
    assert [r.run_id for r in await completed.poll()] == [done.run_id]
    assert all(not f.pending for f in completed.feeds)

    # a goal field the input lacks: logged, left, not retried on every pass
    picky = DriftWatch(store, desks, monitor=monitor, goal="nope", since=0)
    assert await picky.poll() == [] and await picky.poll() == []
    assert picky.checked == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workflows": "helpdesk"}, "list of workflow names"),
        ({"workflows": ["helpdesk", ""]}, "list of workflow names"),
        ({"statuses": [RunStatus.EXECUTING]}, "states a run stops in"),
        ({"statuses": []}, "states a run stops in"),
        ({"interval": 0}, "interval (seconds) must be a finite number > 0"),
        ({"interval": float("nan")}, "interval (seconds) must be a finite number"),
        ({"margin": float("nan")}, "margin (seconds) must be a finite number >= 0"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        DriftWatch(MemoryStore(), monitor=DriftMonitor(KeywordEmbedder()), **kwargs)
    assert message in str(err.value)


class FailingEmbedder(KeywordEmbedder):
    """Fails on one text, as a model can on odd input, until ``fixed``."""

    fixed = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self.fixed and any("revenue" in t for t in texts):
            raise RuntimeError("the embedder fell over")
        return await super().embed(texts)


async def test_a_check_that_fails_is_retried_and_does_not_hold_the_others_up() -> None:
    store = MemoryStore()
    embedder = FailingEmbedder()
    watch = DriftWatch(store, ["helpdesk"], monitor=DriftMonitor(embedder), since=0)
    async with Runtime(store) as rt:
        odd = await rt.run(helpdesk([OFF_TOPIC], []), {"question": QUESTION})
        fine = await rt.run(helpdesk([FAITHFUL], []), {"question": QUESTION})
        assert [r.run_id for r in await watch.poll()] == [fine.run_id]
        assert await watch.poll() == []  # still failing: tried again, nothing written
        assert await checks(store, odd.run_id) == 0
        embedder.fixed = True
        (report,) = await watch.poll()
        assert report.run_id == odd.run_id and report.drifted
        assert watch.checked == 2


async def test_run_ends_on_stop_even_when_stopped_before_it_began() -> None:
    store = MemoryStore()
    watch = DriftWatch(store, ["helpdesk"], monitor=DriftMonitor(KeywordEmbedder()), since=0)
    async with Runtime(store) as rt:
        await rt.run(helpdesk([FAITHFUL], []), {"question": QUESTION})
    watch.stop()
    await asyncio.wait_for(watch.run(), GUARD)  # returns at once: nothing checked
    assert watch.checked == 0

    reported: list[str] = []
    going = DriftWatch(
        store, ["helpdesk"], monitor=DriftMonitor(KeywordEmbedder()), since=0,
        on_report=lambda r: (reported.append(r.run_id), going.stop()),
    )  # fmt: skip
    await asyncio.wait_for(going.run(), GUARD)  # the first report stops it
    assert len(reported) == 1 and going.checked == 1
