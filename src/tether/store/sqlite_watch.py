"""Hear other processes' submits on SQLite: watch the file's ``PRAGMA data_version``.

SQLite has no NOTIFY. A store with wake-up subscribers checks, every ``WATCH_INTERVAL``, whether
another connection committed to the file (``PRAGMA data_version`` changes: a few microseconds,
no lock). Only then it reads the newest unowned runs (a read: WAL readers never wait for the
writer) and announces the queues (and due times) of those it had not seen before, so a run
submitted or parked by another process (``tether worker`` on a laptop, a web process) starts
within about that interval of being due instead of the poll interval; runs it cannot take are
not announced again and again.

What it reads is bounded whatever the backlog, from indexes: the newest runs (by rowid: the
ones just submitted), the head of the queue in claim order (``store.claim_order``: released
runs first, whatever their age) and expired leases. It read every claimable run and sorted
them on each change: 180 ms with 100,000 runs queued, on the event loop, each time another
process committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable

from tether.store.claim_order import ACTIVE_LITERALS, RELEASED_FIRST, WITHIN
from tether.store.wakeup import Wakeup

WATCH_INTERVAL = 0.005
"""Seconds between two looks at the file's data version."""
FIRST_LOOK = 0.05
"""Seconds from the start to the first look, which reads every claimable run it may announce:
the first operation of a fresh process (a resume, a start) has the connection and the event
loop to itself meanwhile, as the runtime's first claim waits ``runtime.STARTUP_GRACE``."""
WINDOW = 64
"""Claimable runs read per change, from each of: the newest, the queue's head, expired leases."""


def claimable_sql(prefix: str) -> str:
    """Claimable runs (``run_id, queue, available_at``), at most ``WINDOW`` of each kind: the
    newest rows, the queue's head in claim order, runs whose lease expired. One parameter:
    ``now``."""
    p, cols = prefix, "run_id, queue, available_at"
    newest = (
        f"SELECT {cols} FROM {p}runs NOT INDEXED "
        f"WHERE rowid > (SELECT MAX(rowid) FROM {p}runs) - {WINDOW} "
        f"AND owner IS NULL AND {ACTIVE_LITERALS}"
    )
    head = (
        f"SELECT {cols} FROM {p}runs INDEXED BY tether_runs_queued "
        f"WHERE owner IS NULL AND {ACTIVE_LITERALS} "
        f"ORDER BY {RELEASED_FIRST}, {WITHIN} LIMIT {WINDOW}"
    )
    expired = (
        f"SELECT {cols} FROM {p}runs WHERE {ACTIVE_LITERALS} AND owner IS NOT NULL "
        f"AND lease_expires_at > 0 AND lease_expires_at <= ? LIMIT {WINDOW}"
    )
    return f"SELECT * FROM ({newest}) UNION SELECT * FROM ({head}) UNION SELECT * FROM ({expired})"


class DataVersionWatcher:
    """A background task announcing other connections' newly claimable runs to ``hub``."""

    def __init__(
        self, db: sqlite3.Connection, prefix: str, hub: Wakeup, now: Callable[[], float]
    ) -> None:
        self.db = db
        self.sql = claimable_sql(prefix)
        self.hub = hub
        self.now = now
        self._task: asyncio.Task[None] | None = None
        self._seen: set[str] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="tether-sqlite-watch"
            )

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _version(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def check(self, last: int) -> int:
        """One look: announce what became claimable if the file changed; the version seen."""
        version = self._version()
        if version == last:
            return version
        rows = self.db.execute(self.sql, (self.now(),)).fetchall()
        fresh: dict[str, float] = {}  # queue -> the earliest time a fresh run of it is due
        for run_id, queue, available_at in rows:
            if run_id not in self._seen:
                fresh[queue] = min(fresh.get(queue, available_at), available_at)
        self._seen = {row[0] for row in rows}
        for queue in sorted(fresh):
            self.hub.notify(queue, fresh[queue])
        return version

    async def _run(self) -> None:
        last = -1
        await asyncio.sleep(FIRST_LOOK)
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            with contextlib.suppress(sqlite3.Error):  # busy, closing: the next look retries
                last = self.check(last)
