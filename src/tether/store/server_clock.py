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

``PostgresStore`` uses one unless it is given a clock; a ``Runtime`` (and so a ``Worker``) on such
a store takes the store's clock unless it is given one. A clock passed in (a test's fake clock)
is used as it is. SQLite and memory stores serve one machine, whose clock is the same for all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

REALIGN_EVERY = 60.0
"""Seconds between two measurements of the offset (a local clock drifts ~1 ms a minute at worst)."""

Sample = tuple[float, float, float]
"""(local time sent, server time read, local time received), in seconds since the epoch."""


class ServerClock:
    """The database server's wall clock, read locally: ``local() + offset``."""

    def __init__(
        self,
        local: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local = local
        self._monotonic = monotonic
        self.offset = 0.0
        """Seconds to add to the local clock to read the server's (positive: server ahead)."""
        self.round_trip: float | None = None
        """The round trip of the sample the offset came from; None until aligned once."""
        self._aligned_at = -math.inf

    def now(self) -> float:
        return self._local() + self.offset

    def local(self) -> float:
        """The local clock this one corrects (for the measurement's own timestamps)."""
        return self._local()

    def due(self, every: float = REALIGN_EVERY) -> bool:
        """True when the offset was never measured or was measured over ``every`` seconds ago."""
        return self._monotonic() - self._aligned_at >= every

    def postpone(self) -> None:
        """A measurement failed (the server is unreachable): keep the offset, try again in
        ``REALIGN_EVERY`` seconds rather than before every lease taken during the outage."""
        self._aligned_at = self._monotonic()

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
        self.round_trip, self.offset = min(usable)
        self._aligned_at = self._monotonic()

    def __repr__(self) -> str:
        return f"ServerClock(offset={self.offset:+.6f}s)"


def store_now(store: object) -> float:
    """The time a store's timestamps are written in (its server's, on PostgreSQL): what to
    compare a lease expiry, a heartbeat or a queue's age with when showing them."""
    now = getattr(getattr(store, "clock", None), "now", None)
    return float(now()) if callable(now) else time.time()
