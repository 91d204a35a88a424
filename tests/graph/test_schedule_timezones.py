"""Cron schedules in a time zone: ``rt.schedule("30 2 * * *", wf, input, timezone="Europe/Paris")``.

Before, every expression was UTC: a team whose nightly billing run belongs at 02:30 in Paris
had to write 00:30 or 01:30 UTC and move it by hand twice a year. Now the expression reads as
the wall clock of its zone, and each wall-clock slot fires once where daylight saving time
moves the clock: the 02:30 that Paris shows twice on the last Sunday of October fires once (a
nightly charge run must not charge twice), the 02:30 that never comes in March fires when the
clock jumps to 03:00.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.graph.test_schedules import WF, cron_runs, make_store  # noqa: F401 (fixture)
from tether import InvalidInputError, Runtime
from tether.cli.main import main
from tether.graph.cron_slots import latest_slot, next_slot
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *fields: int, fold: int = 0) -> float:
    return datetime(*fields, tzinfo=zone, fold=fold).timestamp()  # type: ignore[misc]


def around(zone: ZoneInfo, night: tuple[int, ...]) -> tuple[float, float]:
    """Noon the day before ``night`` and noon the day after, as timestamps."""
    day = date(*night)
    before, after = day - timedelta(days=1), day + timedelta(days=1)
    return at(zone, *before.timetuple()[:3], 12), at(zone, *after.timetuple()[:3], 12)


def walls(slots: list[float], zone: ZoneInfo) -> list[str]:
    return [datetime.fromtimestamp(t, zone).strftime("%m-%d %H:%M%z") for t in slots]


def slots_between(cron: str, start: float, end: float, timezone: str) -> list[float]:
    out, t = [], start
    while (t := next_slot(cron, t, timezone)) <= end:
        out.append(t)
    return out


def test_the_expression_is_the_wall_clock_of_its_zone() -> None:
    summer = next_slot("0 9 * * *", at(PARIS, 2026, 7, 1, 12), "Europe/Paris")
    winter = next_slot("0 9 * * *", at(PARIS, 2026, 12, 1, 12), "Europe/Paris")
    assert walls([summer, winter], ZoneInfo("UTC")) == ["07-02 07:00+0000", "12-02 08:00+0000"]
    t = 1_700_000_000.0  # UTC stays the default
    assert next_slot("0 * * * *", t) == next_slot("0 * * * *", t, "UTC") == 1_700_002_800.0


@pytest.mark.parametrize(
    ("zone", "night"), [(PARIS, (2026, 10, 25)), (NEW_YORK, (2026, 11, 1))], ids=["paris", "ny"]
)
def test_a_wall_time_the_clock_shows_twice_fires_once(
    zone: ZoneInfo, night: tuple[int, ...]
) -> None:
    name = str(zone)
    start, end = around(zone, night)
    hour = 2 if zone is PARIS else 1  # the hour shown twice: 02:xx in Paris, 01:xx in New York
    daily = slots_between(f"30 {hour} * * *", start, end, name)
    assert len(daily) == 2  # the night of the change and the next: before, 3
    assert datetime.fromtimestamp(daily[0], zone).fold == 0  # its first occurrence
    hourly = slots_between("0 * * * *", start, end, name)
    assert len(hourly) == 48  # one per wall-clock hour over two days: the repeated hour once
    assert len({datetime.fromtimestamp(t, zone).strftime("%d %H") for t in hourly}) == 48


@pytest.mark.parametrize(
    ("zone", "night"), [(PARIS, (2026, 3, 29)), (NEW_YORK, (2026, 3, 8))], ids=["paris", "ny"]
)
def test_a_wall_time_the_clock_skips_fires_when_it_jumps(
    zone: ZoneInfo, night: tuple[int, ...]
) -> None:
    name = str(zone)
    start, end = around(zone, night)
    daily = slots_between("30 2 * * *", start, end, name)
    # 02:30 never comes the night of the change (02:00 jumps to 03:00): fired at 03:00, once
    assert [w[6:] for w in walls(daily, zone)] == [
        "03:00" + datetime.fromtimestamp(daily[0], zone).strftime("%z"),
        "02:30" + datetime.fromtimestamp(daily[1], zone).strftime("%z"),
    ]
    assert daily[0] == at(zone, *night, 3, 0)


def test_latest_slot_agrees_with_next_slot_across_the_changes() -> None:
    for name, zone, nights in (
        ("Europe/Paris", PARIS, [(2026, 3, 29), (2026, 10, 25)]),
        ("America/New_York", NEW_YORK, [(2026, 3, 8), (2026, 11, 1)]),
    ):
        for night in nights:
            start, end = around(zone, night)
            for cron in ("30 2 * * *", "0 * * * *", "*/20 1-3 * * *", "30 1 * * *"):
                slots = slots_between(cron, start, end, name)
                for a, b in itertools.pairwise(slots):
                    for probe in (a, a + 1, (a + b) / 2, b - 1):
                        assert latest_slot(cron, probe, name) == a, (
                            name,
                            cron,
                            walls([probe], zone),
                        )


async def test_a_nightly_run_fires_once_on_the_night_paris_goes_back(
    make_store: Callable[[FakeClock], RunStore],  # noqa: F811
) -> None:
    """Three runtimes on one store, the clock stepping every 10 minutes from Saturday noon to
    Monday noon: a run for Sunday 02:30 (the first one) and one for Monday 02:30, no more."""
    clock = FakeClock(at(PARIS, 2026, 10, 24, 12))
    rts = [Runtime(make_store(clock), recover=False, clock=clock) for _ in range(3)]
    try:
        for rt in rts:
            s = await rt.schedule(
                "30 2 * * *", WF, {"who": "billing"}, name="nightly", timezone="Europe/Paris"
            )
            assert s.timezone == "Europe/Paris"
            assert s.next_fire_at == at(PARIS, 2026, 10, 25, 2, 30)
        while clock.now() < at(PARIS, 2026, 10, 26, 12):
            clock.advance(600)
            await asyncio.gather(*(rt.fire_timers() for rt in rts))
        runs = await cron_runs(rts[0])
        assert [r.metadata["slot"] for r in runs] == [
            at(PARIS, 2026, 10, 25, 2, 30),  # 00:30 UTC; not again at 01:30 UTC
            at(PARIS, 2026, 10, 26, 2, 30),  # 01:30 UTC: the wall clock, not the UTC hour
        ]
        (stored,) = await rts[1].store.list_schedules()  # type: ignore[attr-defined]
        assert (stored.timezone, stored.next_fire_at) == (
            "Europe/Paris",
            at(PARIS, 2026, 10, 27, 2, 30),
        )
    finally:
        for rt in rts:
            await rt.close()


async def test_a_new_timezone_moves_the_next_slot_and_the_same_one_keeps_it() -> None:
    clock = FakeClock(at(PARIS, 2026, 7, 1, 12))
    async with Runtime(MemoryStore(clock), recover=False, clock=clock) as rt:
        first = await rt.schedule("0 9 * * *", WF, {"who": "x"}, name="morning")
        assert first.next_fire_at == at(ZoneInfo("UTC"), 2026, 7, 2, 9)
        moved = await rt.schedule(
            "0 9 * * *", WF, {"who": "x"}, name="morning", timezone="Europe/Paris"
        )
        assert moved.next_fire_at == at(PARIS, 2026, 7, 2, 9)  # 07:00 UTC, not 09:00 UTC
        clock.set(at(PARIS, 2026, 7, 2, 9, 1))
        assert await rt.fire_timers() == 1
        again = await rt.schedule(
            "0 9 * * *", WF, {"who": "x"}, name="morning", timezone="Europe/Paris"
        )
        assert again.last_slot == at(PARIS, 2026, 7, 2, 9)  # a restart keeps its place


@pytest.mark.parametrize(
    ("timezone", "message"),
    [
        ("europe/paris", "unknown time zone 'europe/paris'.*did you mean 'Europe/Paris'\\?"),
        ("America/NewYork", "did you mean 'America/New_York'"),
        ("+02:00", "not an offset"),
        ("", "must be an IANA time zone name"),
        (None, "must be an IANA time zone name"),
        ("../../etc/passwd", "unknown time zone"),
    ],
)
async def test_a_zone_that_is_not_one_is_refused(timezone: object, message: str) -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match=message):
            await rt.schedule("0 9 * * *", WF, {"who": "x"}, timezone=timezone)  # type: ignore[arg-type]
        assert await rt.store.list_schedules() == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *"])
async def test_an_expression_that_never_fires_is_refused(cron: str) -> None:
    """Before: croniter's CroniterBadDateError escaped ``schedule`` (an untyped crash)."""
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match="never fires"):
            await rt.schedule(cron, WF, {"who": "x"})


def test_schedules_list_shows_the_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"

    async def add() -> None:
        async with Runtime(SqliteStore(db), recover=False) as rt:
            await rt.schedule("30 2 * * *", WF, {"who": "x"}, name="nightly", timezone="Asia/Tokyo")
            await rt.schedule("0 * * * *", WF, {"who": "x"}, name="hourly")

    asyncio.run(add())
    assert main(["schedules", "list", "--store", f"sqlite:///{db}", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["timezone"]) for r in rows] == [
        ("hourly", "UTC"),
        ("nightly", "Asia/Tokyo"),
    ]
    assert main(["schedules", "list", "--store", f"sqlite:///{db}"]) == 0
    assert "Asia/Tokyo" in capsys.readouterr().out
