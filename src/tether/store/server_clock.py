"""One time base for every process sharing a database: the database server's clock.

Leases, timers, queue availability and worker heartbeats are timestamps one process writes and
another compares with its own "now". Machines' clocks disagree (a VM resumed from a snapshot, a
container without NTP, a host whose NTP daemon died): a worker whose clock runs 20 s ahead sees
every live lease as expired and takes over runs healthy workers are executing; one running
behind leaves a dead worker's runs waiting and fires its timers late; its heartbeats look stale
to the others. So a store shared across machines tells time as its server does: a
``ServerClock`` is the local clock plus an offset measured from round trips to the server (the
sample with the shortest round trip wins; its error is at most half of it, well under a
millisecond on a LAN), measured again every ``REALIGN_EVERY`` seconds so drift stays small.

Between two measurements the time that passed is counted on the monotonic clock, never read off
the local wall clock again: a host whose clock steps while it runs (a VM restored from a
snapshot, an NTP step, an operator's ``date -s``) keeps telling the server's time. Read off the
wall clock, an hour's step ahead made the worker see every live lease as expired and take the
runs of healthy workers over until the next measurement, and a step back made it write leases
that had expired an hour before. A step (the wall clock and the monotonic count more than
``STEP`` apart) makes the clock due for a measurement at once.

``PostgresStore`` uses one unless it is given a clock; a ``Runtime`` (and so a ``Worker``) on such
a store takes the store's clock unless it is given one. A clock passed in (a test's fake clock)
is used as it is. SQLite and memory stores serve one machine, whose clock is the same for all.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence

REALIGN_EVERY = 60.0
"""Seconds between two measurements of the offset (a local clock drifts ~1 ms a minute at worst)."""

STEP = 1.0
"""Seconds the local wall clock may move against the monotonic count between two measurements
before it is taken for a step (NTP slews by at most 0.5 ms a second: 30 ms a minute)."""

_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)
ELAPSED: Callable[[], float] = (
    time.monotonic if _BOOTTIME is None else functools.partial(time.clock_gettime, _BOOTTIME)
)
"""The clock time since the last measurement is counted on: Linux's boot time (monotonic, and
counting a suspend, which ``time.monotonic`` leaves out), ``time.monotonic`` elsewhere."""

Sample = tuple[float, float, float]
"""(local time sent, server time read, local time received), in seconds since the epoch."""


class ServerClock:
    """The database server's wall clock, read locally: the server's time at the last
    measurement plus the monotonic time since (``local() + offset`` until measured once)."""

    def __init__(
        self,
        local: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = ELAPSED,
    ) -> None:
        self._local = local
        self._monotonic = monotonic
        self.offset = 0.0
        """Seconds to add to the local clock to read the server's (positive: server ahead), as
        last measured."""
        self.round_trip: float | None = None
        """The round trip of the sample the offset came from; None until aligned once."""
        self._anchor: tuple[float, float] | None = None
        """(the server's time, the monotonic time) at the last measurement; None before it.
        One tuple: the lease keeper's thread reads the clock while the loop measures."""
        self._tried_at = -math.inf
        """Monotonic time of the last measurement, or of the last one that failed."""
        self._held = False
        """The last measurement failed: the next waits for the interval, step or no step."""

    def now(self) -> float:
        anchor = self._anchor
        if anchor is None:
            return self._local() + self.offset
        return anchor[0] + (self._monotonic() - anchor[1])

    def local(self) -> float:
        """The local clock this one corrects (for the measurement's own timestamps)."""
        return self._local()

    def stepped(self) -> bool:
        """True when the local wall clock moved more than ``STEP`` against the monotonic count
        since the last measurement (a step, or a suspend the monotonic clock did not count)."""
        return self._anchor is not None and abs(self._local() + self.offset - self.now()) > STEP

    def due(self, every: float = REALIGN_EVERY) -> bool:
        """True when the offset was never measured, was measured (or failed to be) ``every``
        seconds ago or more, or the local clock stepped since it was measured."""
        if self._monotonic() - self._tried_at >= every:
            return True
        return not self._held and self.stepped()

    def postpone(self) -> None:
        """A measurement failed (the server is unreachable): keep the offset, try again in
        ``REALIGN_EVERY`` seconds rather than before every lease taken during the outage."""
        self._tried_at = self._monotonic()
        self._held = True

    def align(self, samples: Sequence[Sample]) -> None:
        """Take the offset from the sample with the shortest round trip (the server read its
        clock somewhere inside it; the middle is the best guess). Samples that make no sense
        (a non-finite value, a negative round trip: the local clock stepped meanwhile) are
        skipped; with none left the offset stays as it was."""
        usable = [
            (received - sent, server - (sent + received) / 2)
            for sent, server, received in samples
            if all(math.isfinite(v) for v in (sent, server, received)) and received >= sent
        ]
        if not usable:
            return
        round_trip, offset = min(usable)
        mono = self._monotonic()
        self._anchor = (self._local() + offset, mono)
        self.round_trip, self.offset = round_trip, offset
        self._tried_at = mono
        self._held = False

    def __repr__(self) -> str:
        return f"ServerClock(offset={self.offset:+.6f}s)"


def store_now(store: object) -> float:
    """The time a store's timestamps are written in (its server's, on PostgreSQL): what to
    compare a lease expiry, a heartbeat or a queue's age with when showing them."""
    now = getattr(getattr(store, "clock", None), "now", None)
    return float(now()) if callable(now) else time.time()
