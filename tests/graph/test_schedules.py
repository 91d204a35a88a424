"""Cron schedules: exactly one run per slot however many runtimes race for it (fake clock),
the latest missed slot after downtime, and a real-time check with one-second slots."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, InvalidInputError, RunStatus, Runtime
from tether.graph.schedules import latest_slot, next_slot
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
HOUR = 1_700_002_800.0  # the next full hour


class S(TypedDict):
    who: str


def report() -> Any:
    g = Graph(S, name="report")
    g.add_node("write", lambda s: {"who": f"report for {s['who']}"})
    g.add_edge(START, "write")
    g.add_edge("write", END)
    return g.compile()


WF = report()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    shared: dict[str, RunStore] = {}
    if request.param == "postgres":
        from tests.graph.conftest import PG_DSN, pg_schema

        with pg_schema("tether_cron") as schema:
            from tether.store.postgres import PostgresStore

            yield lambda clock: PostgresStore(PG_DSN, schema=schema, clock=clock)
        return

    def make(clock: FakeClock) -> RunStore:
        if request.param == "memory":
            return shared.setdefault("m", MemoryStore(clock))
        return SqliteStore(tmp_path / "runs.db", clock=clock)

    yield make


async def cron_runs(rt: Runtime) -> list[Any]:
    runs = await rt.list_runs(workflow="report", limit=1000)
    return sorted(runs, key=lambda r: r.metadata["slot"])


def test_slots() -> None:
    assert next_slot("0 * * * *", T0) == HOUR
    assert latest_slot("0 * * * *", T0) == HOUR - 3600
    assert latest_slot("0 * * * *", HOUR) == HOUR  # a slot is its own latest slot
    assert next_slot("* * * * * */10", T0) == T0 + 10  # seconds as the sixth field


async def test_each_slot_fires_once_with_three_runtimes(
    make_store: Callable[[FakeClock], RunStore],
) -> None:
    clock = FakeClock(T0)
    rts = [Runtime(make_store(clock), recover=False, clock=clock) for _ in range(3)]
    try:
        for rt in rts:  # every runtime registers the schedule at start-up
            s = await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="hourly")
            assert s.next_fire_at == HOUR
        assert sum(await asyncio.gather(*(rt.fire_timers() for rt in rts))) == 0
        for slot in range(3):
            clock.set(HOUR + slot * 3600 + 1)
            fired = await asyncio.gather(*(rt.fire_timers() for rt in rts))
            assert sum(fired) == 1, fired
            assert sum(await asyncio.gather(*(rt.fire_timers() for rt in rts))) == 0
        runs = await cron_runs(rts[0])
        assert [r.metadata["slot"] for r in runs] == [HOUR, HOUR + 3600, HOUR + 7200]
        assert [r.idempotency_key for r in runs] == [
            f"cron:hourly:{HOUR + i * 3600:.0f}" for i in range(3)
        ]
        assert {r.status for r in runs} == {RunStatus.PLANNED}  # enqueued for any worker
        rts[1].register(WF)
        while await rts[1].recover_once():
            pass
        for r in runs:
            done = await rts[1].wait(r.run_id, timeout=60)
            assert done.state["who"] == "report for ops"

        # down for 5 hours: the latest missed slot fires once, then the next one after now
        clock.set(HOUR + 7 * 3600 + 120)
        assert sum(await asyncio.gather(*(rt.fire_timers() for rt in rts))) == 1
        runs = await cron_runs(rts[0])
        assert runs[-1].metadata["slot"] == HOUR + 7 * 3600
        assert len(runs) == 4
        s2 = await rts[2].schedule("0 * * * *", WF, {"who": "ops"}, name="hourly")
        assert (s2.next_fire_at, s2.last_slot) == (HOUR + 8 * 3600, HOUR + 7 * 3600)
    finally:
        for rt in rts:
            await rt.close()


async def test_a_runtime_without_the_workflow_leaves_the_slot(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = MemoryStore(clock)
    async with Runtime(store, recover=False, clock=clock) as rt:
        await rt.schedule("0 * * * *", WF, {"who": "x"})
    clock.set(HOUR)
    async with Runtime(store, recover=False, clock=clock) as other:  # knows no workflow
        assert await other.fire_timers() == 0
        async with Runtime(store, workflows=[WF], recover=False, clock=clock) as rt:
            assert await rt.fire_timers() == 1


async def test_a_bad_cron_expression_is_refused() -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match="cron"):
            await rt.schedule("every hour", WF, {})


async def test_one_second_slots_in_real_time_fire_once_each(tmp_path: Path) -> None:
    """Three runtimes on one SQLite file, firing by themselves (recover=True), one run per
    second: every run has a slot of its own and completes."""
    path = tmp_path / "cron.db"
    rts = [
        Runtime(SqliteStore(path), workflows=[WF], poll_interval=0.1, lease_ttl=5) for _ in range(3)
    ]
    for rt in rts:
        await rt.open()
    try:
        for rt in rts:
            await rt.schedule("* * * * * *", WF, {"who": "tick"}, name="tick")
        for _ in range(6000):  # until 3 slots completed (a generous deadline)
            runs = await rts[0].list_runs(workflow="report", limit=1000)
            if sum(r.status is RunStatus.COMPLETED for r in runs) >= 3:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("three one-second slots did not complete")
    finally:
        for rt in rts:
            await rt.close()
    async with Runtime(SqliteStore(path), recover=False) as rt:
        runs = await rt.list_runs(workflow="report", limit=1000)
    slots = [r.metadata["slot"] for r in runs]
    assert len(slots) == len(set(slots)) >= 3
    assert all(s == int(s) for s in slots)


async def test_input_that_does_not_fit_the_workflow_is_refused_when_scheduling() -> None:
    """Before: stored as given, then every firing raised InvalidInputError out of
    ``fire_timers`` (the background loop logged a traceback every poll)."""
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match="unknown state key 'whom'"):
            await rt.schedule("0 * * * *", WF, {"whom": "ops"})
        with pytest.raises(InvalidInputError, match="NaN"):
            await rt.schedule("0 * * * *", WF, {"who": float("nan")})  # type: ignore[dict-item]
        with pytest.raises(InvalidInputError, match="not valid UTF-8"):
            await rt.schedule("0 * * * *", WF, {"who": "x"}, name="\udcff")
        assert await rt.store.list_schedules() == []  # type: ignore[attr-defined]


class Shift(TypedDict):
    team: str


def _report_v2() -> Any:
    """``report`` after a deploy that changed its state: the stored input no longer fits."""
    g = Graph(Shift, name="report")
    g.add_node("write", lambda s: {"team": s["team"]})
    g.add_edge(START, "write").add_edge("write", END)
    return g.compile()


async def test_a_schedule_whose_input_stopped_fitting_skips_its_slot_and_blocks_no_other(
    make_store: Callable[[FakeClock], RunStore], caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the first such schedule raised out of ``fire_timers`` at every poll, so no
    schedule after it ever fired again."""
    clock = FakeClock(T0)
    async with Runtime(make_store(clock), recover=False, clock=clock) as rt:
        await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="a-report")
        await rt.schedule("0 * * * *", _other(), {"who": "x"}, name="b-other")
    clock.set(HOUR + 1)
    store = make_store(clock)  # after a deploy: the same database, report's state changed
    async with Runtime(store, workflows=[_report_v2(), _other()], recover=False, clock=clock) as rt:
        with caplog.at_level("ERROR", logger="tether.schedules"):
            assert await rt.fire_timers() == 1  # b-other's slot
            assert await rt.fire_timers() == 0  # a-report's slot is skipped, not retried
        (other,) = await rt.list_runs(workflow="other")
        assert other.metadata["slot"] == HOUR
        assert await rt.list_runs(workflow="report") == []
        skipped = [r.getMessage() for r in caplog.records if r.name == "tether.schedules"]
        assert len(skipped) == 1 and "a-report" in skipped[0] and "team" in skipped[0]
        schedules = await rt.store.list_schedules()  # type: ignore[attr-defined]
        (bad,) = [s for s in schedules if s.name == "a-report"]
        assert bad.next_fire_at == HOUR + 3600 and bad.enabled  # tries again at the next slot


def _other() -> Any:
    g = Graph(S, name="other")
    g.add_node("write", lambda s: {"who": s["who"]})
    g.add_edge(START, "write").add_edge("write", END)
    return g.compile()


async def test_a_schedule_name_used_by_another_workflow_is_refused(
    make_store: Callable[[FakeClock], RunStore],
) -> None:
    """Before: the second ``schedule`` replaced the first silently, so one team's "nightly"
    stopped starting its workflow the day another team used the name."""
    clock = FakeClock(T0)
    async with Runtime(make_store(clock), recover=False, clock=clock) as rt:
        first = await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="nightly")
        with pytest.raises(InvalidInputError, match=r"'nightly' starts runs of .*'report'"):
            await rt.schedule("*/5 * * * *", _other(), {"who": "x"}, name="nightly")
        (kept,) = await rt.store.list_schedules()  # type: ignore[attr-defined]
        assert (kept.workflow, kept.cron) == ("report", "0 * * * *")
        moved = await rt.schedule("30 * * * *", WF, {"who": "dev"}, name="nightly")
        assert (moved.cron, moved.input) == ("30 * * * *", {"who": "dev"})  # a new version
        assert moved.next_fire_at == HOUR - 1800  # 22:30, the first slot after T0 (22:13)
        assert first.workflow == moved.workflow
        assert await rt.unschedule("nightly") is True
        assert await rt.unschedule("nightly") is False
        other = await rt.schedule("*/5 * * * *", _other(), {"who": "x"}, name="nightly")
        assert other.workflow == "other"


async def test_a_slot_whose_queue_is_full_waits_for_room_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: QueueFullError went out of ``fire_timers`` at every poll (a traceback each time
    from the background loop) until the queue had room."""
    clock = FakeClock(T0)
    store = MemoryStore(clock)
    async with Runtime(store, workflows=[WF], recover=False, clock=clock) as rt:
        await store.set_queue_limit("queue", "default", max_depth=1)
        await rt.submit(WF, {"who": "already waiting"})
        await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="hourly")
        clock.set(HOUR + 1)
        with caplog.at_level("WARNING", logger="tether.schedules"):
            assert await rt.fire_timers() == 0
            assert await rt.fire_timers() == 0
        waits = [r.getMessage() for r in caplog.records if r.name == "tether.schedules"]
        assert len(waits) == 1 and "waits for room" in waits[0]  # once per slot, not per poll
        await store.set_queue_limit("queue", "default")  # room again
        assert await rt.fire_timers() == 1
        (run,) = [r for r in await rt.list_runs() if r.metadata.get("schedule") == "hourly"]
        assert run.metadata["slot"] == HOUR


async def test_a_schedule_starts_its_runs_on_its_queue_for_its_tenant(
    make_store: Callable[[FakeClock], RunStore],
) -> None:
    """Before: every scheduled run went on the default queue with no tenant, so a tenant's
    nightly job escaped the tenant's limits, quotas and kill switches, and the workers of the
    queue it belonged to never saw it."""
    clock = FakeClock(T0)
    async with Runtime(make_store(clock), recover=False, clock=clock) as rt:
        made = await rt.schedule(
            "0 * * * *",
            WF,
            {"who": "acme"},
            name="acme-hourly",
            queue="reports",
            priority=5,
            tenant="acme",
        )
        assert (made.queue, made.priority, made.tenant) == ("reports", 5, "acme")
        await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="plain")
        (kept, plain) = await rt.store.list_schedules()  # type: ignore[attr-defined]
        assert (kept.queue, kept.priority, kept.tenant) == ("reports", 5, "acme")
        assert (plain.queue, plain.priority, plain.tenant) == ("default", 0, None)
        clock.set(HOUR + 1)
        assert await rt.fire_timers() == 2
        by_name = {r.metadata["schedule"]: r for r in await cron_runs(rt)}
        run = by_name["acme-hourly"]
        assert (run.queue, run.priority, run.tenant) == ("reports", 5, "acme")
        assert (by_name["plain"].queue, by_name["plain"].tenant) == ("default", None)
        # scheduling it again moves later runs elsewhere; the slot already fired stays
        moved = await rt.schedule("0 * * * *", WF, {"who": "acme"}, name="acme-hourly")
        assert (moved.queue, moved.priority, moved.tenant) == ("default", 0, None)
    # only the workers of its queue take it
    async with Runtime(
        make_store(clock), workflows=[WF], recover=False, clock=clock, queues=["reports"]
    ) as worker:
        assert await worker.recover_once() == [run.run_id]
        done = await worker.wait(run.run_id, timeout=60)
        assert done.state["who"] == "report for acme"


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        ({"queue": ""}, "queue must be a non-empty string"),
        ({"priority": 1.5}, "priority must be an int"),
        ({"tenant": ""}, "a tenant is a non-empty name"),
    ],
)
async def test_a_bad_queue_priority_or_tenant_is_refused_when_scheduling(
    placement: dict[str, Any], message: str
) -> None:
    clock = FakeClock(T0)
    async with Runtime(MemoryStore(clock), recover=False, clock=clock) as rt:
        with pytest.raises(InvalidInputError, match=message):
            await rt.schedule("0 * * * *", WF, {"who": "x"}, name="bad", **placement)
        assert await rt.store.list_schedules() == []  # type: ignore[attr-defined]


async def test_schedules_stored_before_v19_keep_firing_on_the_default_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tether.store import schema

    path, clock = tmp_path / "runs.db", FakeClock(T0)
    with monkeypatch.context() as m:  # a tether whose schedules had no queue, priority, tenant
        m.setattr(schema, "_VERSIONS", [v for v in schema._VERSIONS if v[0] < 19])
        m.setattr(schema, "LATEST_VERSION", 18)
        old = SqliteStore(path, clock=clock)
        await old.setup()
        await old.close()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO tether_schedules (name, cron, workflow, input, next_fire_at, enabled, "
            "created_at, updated_at) VALUES ('hourly', '0 * * * *', 'report', ?, ?, 1, 0, 0)",
            (b'{"who":"ops"}', HOUR),
        )
    store = SqliteStore(path, clock=clock)
    async with Runtime(store, workflows=[WF], recover=False, clock=clock) as rt:
        (s,) = await rt.store.list_schedules()  # type: ignore[attr-defined]
        assert (s.queue, s.priority, s.tenant) == ("default", 0, None)
        clock.set(HOUR + 1)
        assert await rt.fire_timers() == 1
        (run,) = await cron_runs(rt)
        assert (run.queue, run.tenant) == ("default", None)


async def test_two_processes_racing_for_one_name_cannot_overwrite_each_other(
    make_store: Callable[[FakeClock], RunStore],
) -> None:
    """Both read the name as free, then both wrote: on PostgreSQL the second upsert replaced
    the first's workflow silently (3 tries in 3). The store refuses another workflow's upsert."""
    clock = FakeClock(T0)
    rts = [Runtime(make_store(clock), recover=False, clock=clock) for _ in range(2)]
    try:
        for rt in rts:
            await rt.open()
        got = await asyncio.gather(
            rts[0].schedule("0 * * * *", WF, {"who": "ops"}, name="nightly"),
            rts[1].schedule("0 * * * *", _other(), {"who": "x"}, name="nightly"),
            return_exceptions=True,
        )
        won = [g for g in got if not isinstance(g, BaseException)]
        lost = [g for g in got if isinstance(g, BaseException)]
        assert len(won) == 1 and len(lost) == 1, got
        assert isinstance(lost[0], InvalidInputError) and "another name" in str(lost[0])
        (kept,) = await rts[0].store.list_schedules()  # type: ignore[attr-defined]
        assert kept.workflow == won[0].workflow
    finally:
        for rt in rts:
            await rt.close()


async def test_a_re_enabled_schedule_fires_no_slot_missed_while_it_was_off(
    make_store: Callable[[FakeClock], RunStore],
) -> None:
    clock = FakeClock(T0)
    async with Runtime(make_store(clock), workflows=[WF], recover=False, clock=clock) as rt:
        await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="hourly", enabled=False)
        clock.set(HOUR + 5 * 3600 + 60)  # five slots passed while it was off
        assert await rt.fire_timers() == 0
        back = await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="hourly")
        assert back.next_fire_at == HOUR + 6 * 3600  # the first slot after now
        assert await rt.fire_timers() == 0  # before: the 5th slot fired at once
        clock.set(HOUR + 6 * 3600 + 1)
        assert await rt.fire_timers() == 1


@pytest.mark.parametrize("cron", ["0 0 1 1 * 0 2027", "0 0 1 1 * 0 2020", "* * * *"])
async def test_an_expression_with_a_year_or_missing_fields_is_refused(cron: str) -> None:
    """croniter takes a year as a 7th field: its slots run out, and a schedule past its
    last slot raised out of fire_timers at every poll, so no other schedule fired either."""
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match="not a cron expression"):
            await rt.schedule(cron, WF, {"who": "x"})


async def test_a_stored_schedule_without_a_next_slot_holds_up_no_other(
    make_store: Callable[[FakeClock], RunStore], caplog: pytest.LogCaptureFixture
) -> None:
    """A row an earlier version stored with a year field, past its last slot."""
    from tether.store.timers import Schedule

    clock = FakeClock(T0)
    store = make_store(clock)
    async with Runtime(store, workflows=[WF, _other()], recover=False, clock=clock) as rt:
        old = Schedule("a-year", "0 0 1 1 * 0 2020", "report", {"who": "x"}, T0 - 60)
        await rt.store.put_schedule(old)  # type: ignore[attr-defined]
        await rt.schedule("0 * * * *", _other(), {"who": "x"}, name="b-hourly")
        clock.set(HOUR + 1)
        with caplog.at_level("ERROR", logger="tether.schedules"):
            assert await rt.fire_timers() == 1  # b-hourly's slot
            assert await rt.fire_timers() == 0
        logged = [r.getMessage() for r in caplog.records if r.name == "tether.schedules"]
        assert len(logged) == 1 and "a-year" in logged[0] and "no next slot" in logged[0]


@pytest.mark.parametrize("restarted", [False, True], ids=["same-runtime", "restarted"])
async def test_a_clock_that_ran_a_day_ahead_and_came_back_keeps_the_schedule_going(
    make_store: Callable[[FakeClock], RunStore], restarted: bool
) -> None:
    """The host's clock jumps a day ahead (a bad NTP source, a VM's clock), then is set right.
    While ahead the hourly schedule fired once, as after downtime; its next slot was then a day
    away, so once the clock was right again it fired nothing for 24 hours (and the slot it
    fired early never again: its run exists). Now a runtime that sees its clock go back (or
    starts) moves a schedule's next slot back to the next one after now; the slot fired early
    is not fired twice when its time comes."""
    clock = FakeClock(T0)
    rt = Runtime(make_store(clock), recover=False, clock=clock)
    try:
        await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="hourly")
        clock.set(HOUR + 1)
        assert await rt.fire_timers() == 1
        clock.set(HOUR + 86_400 + 1)  # a day ahead
        assert await rt.fire_timers() == 1  # the latest slot, once
        clock.set(HOUR + 1_800)  # set right again
        if restarted:
            await rt.close()
            rt = Runtime(make_store(clock), recover=False, clock=clock, workflows=[WF])
        assert await rt.fire_timers() == 0
        fired = []
        for hour in range(1, 26):
            clock.set(HOUR + hour * 3600 + 1)
            fired.append(await rt.fire_timers())
        assert fired == [1] * 23 + [0, 1]  # every hour, the one fired early not again
        slots = [r.metadata["slot"] for r in await cron_runs(rt)]
        assert slots == [HOUR + h * 3600 for h in range(26)]  # each slot once, none missed
    finally:
        await rt.close()


async def test_cron_nicknames_are_taken_spelled_out(
    make_store: Callable[[FakeClock], RunStore],
) -> None:
    """'@hourly' (cron's nickname for '0 * * * *') was refused as "not a cron expression";
    it is kept spelled out, so scheduling it again either way keeps its next slot."""
    clock = FakeClock(T0)
    async with Runtime(make_store(clock), workflows=[WF], recover=False, clock=clock) as rt:
        s = await rt.schedule("@hourly", WF, {"who": "ops"}, name="hourly")
        assert (s.cron, s.next_fire_at) == ("0 * * * *", HOUR)
        clock.set(HOUR + 1)
        assert await rt.fire_timers() == 1
        again = await rt.schedule(" 0 * *  * *", WF, {"who": "ops"}, name="hourly")
        assert (again.cron, again.next_fire_at, again.last_slot) == ("0 * * * *", HOUR + 3600, HOUR)
        daily = await rt.schedule("@DAILY", WF, {"who": "ops"}, name="daily")
        assert daily.cron == "0 0 * * *"
        with pytest.raises(InvalidInputError, match="not when a worker starts"):
            await rt.schedule("@reboot", WF, {"who": "ops"}, name="boot")
        with pytest.raises(InvalidInputError, match="the nicknames are @yearly"):
            await rt.schedule("@every 5m", WF, {"who": "ops"}, name="often")
