"""Durable sleep: ``await ctx.sleep(seconds)`` / ``await ctx.sleep_until(ts)`` in a node.

The deadline is journaled (an effect of kind ``sleep``), so a node that re-runs (after the
sleep, a crash, a resume) sees the deadline it computed the first time. A sleep not yet due
parks the run: the step's finished sibling tasks stay journaled, the run commits a ``sleeping``
event and releases its lease with ``available_at`` = the deadline, holding no worker slot and
keeping its ACTIVE status. Any runtime with ``recover=True`` claims it once due (claims honour
``available_at``), and the node re-runs from its start, ``sleep`` returning at once.

A sleep with at most ``INLINE_SLEEP`` seconds left sleeps in the process instead (parking and
claiming again costs more than that wait); its deadline is journaled all the same.
"""

from __future__ import annotations

import asyncio
import datetime
import math

from tether.core.clock import Clock
from tether.core.errors import InvalidInputError, TetherSignal

INLINE_SLEEP = 1.0
"""Seconds: a sleep with at most this long left waits in the process instead of parking."""

SLEEPING_EVENT = "sleeping"


class Sleeping(TetherSignal):
    """Raised by a durable sleep that is not yet due: the run parks until ``until``."""

    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until


LATEST = 253402300799.0
"""The last second of 9999-12-31 (UTC), the latest time a deadline may name: Python's datetime
(the CLI, the dashboard, the server) cannot show a later one, and no wait is meant to last
that long."""


def check_time(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = ""
        if isinstance(value, datetime.datetime):
            hint = " (a datetime: pass value.timestamp(), seconds since the epoch)"
        elif isinstance(value, datetime.timedelta):
            hint = " (a timedelta: pass value.total_seconds())"
        raise InvalidInputError(f"{what} must be a finite number of seconds, got {value!r}{hint}")
    return float(value)


def check_deadline(until: float, what: str, given: object) -> float:
    """``until`` (seconds since the epoch), refused past ``LATEST``: a run parked until 1e300
    waited forever, its ``wait()`` with it, and nothing could show when it was due."""
    if until > LATEST:
        raise InvalidInputError(
            f"{what} = {given!r} is a deadline after 9999-12-31; a wait that long is no "
            "deadline: use a time that can happen (or no sleep at all)"
        )
    return until


async def wait_until(clock: Clock, deadline: float) -> None:
    """Return when ``deadline`` has passed: at once, after a short in-process sleep, or by
    raising ``Sleeping`` to park the run."""
    left = deadline - clock.now()
    if left <= 0:
        return
    if left <= INLINE_SLEEP:
        await asyncio.sleep(left)
        return
    raise Sleeping(deadline)


async def sleep(seconds: float) -> None:
    """``await ctx.sleep(seconds)`` for the node running now (no ``ctx`` argument needed)."""
    from tether.graph.context import current_context

    await current_context().sleep(seconds)


async def sleep_until(ts: float) -> None:
    """``await ctx.sleep_until(ts)`` for the node running now."""
    from tether.graph.context import current_context

    await current_context().sleep_until(ts)
