"""The SQLite watcher (``store.sqlite_watch``) hears what other processes make claimable (a
submit, a run parked until a time, an expired lease) behind a deep backlog, and reads a
bounded number of index entries to find out: it read and sorted every claimable run on each
change another process committed (180 ms with 100,000 queued, on the event loop)."""

from __future__ import annotations

from pathlib import Path

from tether.core.lifecycle import RunStatus
from tether.store.sqlite import SqliteStore
from tether.store.sqlite_watch import DataVersionWatcher, claimable_sql
from tether.store.types import Commit
from tether.store.wakeup import Wakeup
from tether.testing import FakeClock
from tether.testing.store_helpers import T0, create

BACKLOG = 300  # more than the watcher reads of any kind (WINDOW)


async def test_what_another_process_makes_claimable_is_heard_behind_a_backlog(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "runs.db"
    mine, theirs = SqliteStore(path, clock=clock), SqliteStore(path, clock=clock)
    await mine.setup()
    hub = Wakeup()
    heard: list[tuple[str, float]] = []
    hub.subscribe(lambda queue, at: heard.append((queue, at)))
    watcher = DataVersionWatcher(mine._db, "tether_", hub, clock.now)
    try:
        for i in range(BACKLOG):
            await create(theirs, f"old{i:04d}", status=RunStatus.PLANNED, priority=9)
        running = {"owner": "w0", "lease_token": 1, "lease_expires_at": T0 + 30}
        await create(theirs, "parked", status=RunStatus.EXECUTING, queue="later", **running)
        await create(theirs, "held", owner="gone", lease_token=1, lease_expires_at=T0 + 5)
        last = watcher.check(-1)
        assert heard == [("default", 0.0)]  # the backlog: one announcement for its queue
        heard.clear()

        await create(theirs, "fresh", status=RunStatus.PLANNED, queue="mail")  # the newest
        last = watcher.check(last)
        assert heard == [("mail", 0.0)]
        heard.clear()

        # another process parks a run until a time: behind 300 runs of higher priority
        await theirs.commit("parked", 1, Commit(available_at=T0 + 60, release_lease=True))
        last = watcher.check(last)
        assert heard == [("later", T0 + 60)]
        heard.clear()

        clock.set(T0 + 5)  # the lease of "held" expires: an orphan to take over
        await create(theirs, "noise", status=RunStatus.COMPLETED)  # any commit: a new version
        last = watcher.check(last)
        assert heard == [("default", 0.0)]
        assert watcher.check(last) == last and len(heard) == 1  # nothing changed: no read
    finally:
        await theirs.close()
        await mine.close()


async def test_a_look_reads_indexes_never_every_claimable_run(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    sql = claimable_sql("tether_")
    plan = [row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", (T0,))]
    await store.close()
    assert "SEARCH tether_runs USING INTEGER PRIMARY KEY (rowid>?)" in plan, plan
    assert "SCAN tether_runs USING INDEX tether_runs_queued" in plan, plan
    assert not any("FOR ORDER BY" in step for step in plan), plan  # no sort of them all
    assert not any(step == "SCAN tether_runs" for step in plan), plan
