"""The slots of a cron schedule, in the time zone it is written for (pure: no store, no clock).

A schedule's expression reads as a wall clock in its ``timezone`` (an IANA name, default
``"UTC"``): ``"0 9 * * 1-5"`` in ``"Europe/Paris"`` is 09:00 in Paris, 07:00 UTC in summer and
08:00 UTC in winter. Where daylight saving time moves the clock, each wall-clock slot fires
**once**:

- a time the clock skips (02:30 on the night it jumps from 02:00 to 03:00) fires when the clock
  jumps, at 03:00 (``croniter``'s rule);
- a time the clock shows twice (02:30 on the night it goes back from 03:00 to 02:00) fires at
  its first occurrence only, so a daily 02:30 job runs once that night, not twice, and an
  hourly job skips the repeated hour (for work that must run every N minutes of elapsed time,
  write the schedule in UTC).

Slots are POSIX timestamps; expressions are parsed by ``croniter``: 5 fields (minute
granularity), or 6 with seconds as the sixth (``"* * * * * */10"``: every 10 seconds), or one of
cron's nicknames (``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``), kept spelled
out (``"0 * * * *"``).
"""

from __future__ import annotations

import difflib
import zoneinfo
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

from tether.core.errors import InvalidInputError

UTC_NAME = "UTC"


ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The nicknames of cron (Vixie cron's, as ``crontab(5)`` lists them) and what they stand for."""


def check_cron(cron: str) -> str:
    """The expression in the form a schedule keeps: its fields separated by one space, a
    nickname (``@hourly``, ``@daily``...) spelled out; InvalidInputError saying what to write
    when it is none."""
    from croniter import CroniterBadDateError, croniter  # imported on first use

    if isinstance(cron, str) and cron.strip().startswith("@"):
        nick = cron.strip().lower()
        if nick not in ALIASES:
            why = (
                "a schedule fires at times of the clock, not when a worker starts (start that "
                "run from your worker's startup instead)"
                if nick == "@reboot"
                else f"the nicknames are {', '.join(ALIASES)}"
            )
            raise InvalidInputError(f"not a cron expression: {cron!r}; {why}")
        cron = ALIASES[nick]
    if (
        not isinstance(cron, str)
        or len(cron.split()) not in (5, 6)  # croniter also takes a year: its slots run out
        or not croniter.is_valid(cron)
    ):
        raise InvalidInputError(
            f"not a cron expression: {cron!r}; use 5 fields ('0 * * * *': hourly) or 6 with "
            "seconds last ('* * * * * */10': every 10 seconds), or a nickname such as "
            "'@hourly' or '@daily'"
        )
    cron = " ".join(cron.split())  # ' 0 * * * *' is '0 * * * *': one schedule, not a new one
    try:
        croniter(cron, datetime(2000, 1, 1)).get_next(float)
    except CroniterBadDateError:  # a day no month has: '0 0 30 2 *', '0 0 31 4 *'
        raise InvalidInputError(
            f"cron expression {cron!r} never fires: no month has the day it names"
        ) from None
    return cron


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone (``"Europe/Paris"``, ``"UTC"``); InvalidInputError
    naming the closest known zones otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(
            f"a schedule's timezone must be an IANA time zone name such as 'Europe/Paris' or "
            f"'UTC', got {name!r}"
        )
    try:
        zone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        known = zoneinfo.available_timezones()
        # a wrong case ('europe/paris') is the commonest slip, then a typo
        near = [z for z in sorted(known) if z.lower() == name.lower()]
        near = near or difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(z) for z in near)}?" if near else ""
        raise InvalidInputError(
            f"unknown time zone {name!r}: give an IANA name such as 'Europe/Paris', "
            f"'America/New_York' or 'UTC' (not an offset like '+02:00'){hint}"
        ) from None
    return name


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    return zoneinfo.ZoneInfo(name)


def _iter(cron: str, at: float, tz: tzinfo) -> Any:
    from croniter import croniter

    return croniter(cron, datetime.fromtimestamp(at, tz))


def _first_occurrence(t: float, tz: tzinfo) -> bool:
    """Whether instant ``t`` shows a wall time for the first time (not in a repeated hour)."""
    return datetime.fromtimestamp(t, tz).fold == 0


def next_slot(cron: str, after: float, timezone: str = UTC_NAME) -> float:
    """The first slot strictly after ``after``."""
    tz = zone(timezone)
    slots = _iter(cron, after, tz)
    while True:
        t = float(slots.get_next(float))
        if t > after and _first_occurrence(t, tz):
            return t


def latest_slot(cron: str, at: float, timezone: str = UTC_NAME) -> float:
    """The last slot at or before ``at``."""
    tz = zone(timezone)
    slots = _iter(cron, next_slot(cron, at, timezone), tz)
    while True:
        t = float(slots.get_prev(float))
        if t <= at and _first_occurrence(t, tz):
            return t
