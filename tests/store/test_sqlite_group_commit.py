"""SQLite group commit and off-path WAL checkpoints."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tether.core.errors import LeaseLostError, RunNotFoundError
from tether.core.lifecycle import RunStatus
from tether.store.sqlite import SqliteStore
from tether.store.types import Checkpoint, Commit, Event, RunRecord
from tether.testing import FakeClock


async def _make_runs(store: SqliteStore, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = f"r{i}"
        await store.create_run(
            RunRecord(
                rid, "wf", RunStatus.EXECUTING, owner="me", lease_token=1, lease_expires_at=1e12
            ),
            Checkpoint(rid, 0, [], [], {"n": 0}),
            [(None, RunStatus.EXECUTING, "t", "")],
        )
        ids.append(rid)
    return ids


def _spy_on_statements(store: SqliteStore) -> list[str]:
    """Record the first keyword of every statement the store's transactions execute (on its
    connection, or on the cursor its commits share)."""
    calls: list[str] = []

    class Spy:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

        def execute(self, sql: str, *args: object) -> object:
            calls.append(sql.split()[0].upper())
            return self.real.execute(sql, *args)

        def executemany(self, sql: str, *args: object) -> object:
            calls.append(sql.split()[0].upper())
            return self.real.executemany(sql, *args)

    store._tx.db = Spy(store._db)  # type: ignore[assignment]
    store._cur = Spy(store._cur)  # type: ignore[assignment]
    return calls


def _step(rid: str, step: int) -> Commit:
    return Commit(
        checkpoint=Checkpoint(rid, step, [["t", "a", {"n": step}]], []),
        events=[Event(rid, 0, "step_finished", 0.0, step)],
    )


async def test_commits_in_one_tick_share_a_transaction_and_refusals_stay_isolated(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "g.db")
    await store.setup()
    ids = await _make_runs(store, 20)
    stale = ids[7]
    await store.commit(stale, None, Commit())  # an operator write bumps r7's token to 2

    calls = _spy_on_statements(store)
    results = await asyncio.gather(
        *(store.commit(rid, 1, _step(rid, 1)) for rid in ids),
        store.commit("nope", 1, _step("nope", 1)),
        return_exceptions=True,
    )
    store._tx.db = store._db
    assert calls.count("BEGIN") == 1 and calls.count("COMMIT") == 1, calls

    for rid, res in zip(ids, results, strict=False):
        if rid == stale:
            assert isinstance(res, LeaseLostError)
            assert (await store.get_run(rid)).step == 0, "a refused commit writes nothing"
        else:
            assert not isinstance(res, BaseException), res
            assert res.step == 1 and res.event_seq == 1
            assert (await store.get_checkpoint(rid, 1)).delta == [["t", "a", {"n": 1}]]
    assert isinstance(results[-1], RunNotFoundError)
    await store.close()


async def test_unexpected_error_in_a_batch_falls_back_to_one_transaction_each(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "f.db")
    await store.setup()
    ids = await _make_runs(store, 3)
    bad = Commit(checkpoint=Checkpoint(ids[1], 1, [["t", "a", {"x": object()}]], []))
    results = await asyncio.gather(
        store.commit(ids[0], 1, _step(ids[0], 1)),
        store.commit(ids[1], 1, bad),
        store.commit(ids[2], 1, _step(ids[2], 1)),
        return_exceptions=True,
    )
    assert isinstance(results[1], TypeError)
    assert [(await store.get_run(r)).step for r in ids] == [1, 0, 1]
    await store.close()


async def test_wal_is_checkpointed_off_the_hot_path(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path)
    await store.setup()
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    (rid,) = await _make_runs(store, 1)
    size0 = os.path.getsize(path)
    for step in range(1, 1200):
        await store.commit(rid, 1, _step(rid, step))
    for _ in range(100):  # the checkpointer thread copies WAL pages into the main file
        if os.path.getsize(path) > size0:
            break
        await asyncio.sleep(0.05)
    assert os.path.getsize(path) > size0
    await store.close()
    # everything is readable from the file by a plain connection after close
    db = sqlite3.connect(path)
    assert db.execute("SELECT MAX(step) FROM tether_checkpoints").fetchone()[0] == 1199
    db.close()


@pytest.mark.parametrize("path", [":memory:"])
async def test_in_memory_database_has_no_checkpointer(path: str) -> None:
    store = SqliteStore(path)
    await store.setup()
    assert store._wal.thread is None
    await store.close()


async def test_control_writes_in_the_same_tick_never_nest_in_a_pending_batch(
    tmp_path: Path,
) -> None:
    """take_tokens / set_flag run to completion on the loop thread, each in its own
    transaction, while commits queued in the same tick wait for their one batch."""
    store = SqliteStore(tmp_path / "c.db", clock=FakeClock())
    await store.setup()
    ids = await _make_runs(store, 6)
    calls = _spy_on_statements(store)
    results = await asyncio.gather(
        *(store.commit(rid, 1, _step(rid, 1)) for rid in ids[:3]),
        store.take_tokens("b", 1, 3),
        store.set_flag("k", {"on": True}),
        store.take_tokens("b", 1, 3, n=2),
        *(store.commit(rid, 1, _step(rid, 1)) for rid in ids[3:]),
        store.take_tokens("b", 1, 3),
    )
    store._tx.db = store._db
    assert not store._db.in_transaction
    opened = [c for c in calls if c in ("BEGIN", "COMMIT", "ROLLBACK")]
    # three takes (the third finds the bucket empty), then the one batch of six commits
    assert opened == ["BEGIN", "COMMIT"] * 4, calls
    batch = len(calls) - calls[::-1].index("BEGIN") - 1
    assert calls[:batch].count("BEGIN") == 3 and calls[batch + 1] == "SELECT"
    commits, (w1, flag, w2), (*more, w3) = results[:3], results[3:6], results[6:]
    assert (w1, flag, w2, w3) == (0.0, None, 0.0, 1.0)
    assert [r.step for r in (*commits, *more)] == [1] * 6  # type: ignore[union-attr]
    assert await store.get_flags() == {"k": {"on": True}}
    await store.close()


async def test_the_wal_stays_bounded_under_continuous_writes(tmp_path: Path) -> None:
    """A passive checkpoint alone never lets a steady writer start the log over: the WAL grew
    by some 18 KB a step for the life of the store. Past ``wal_limit`` it is restarted."""
    path = tmp_path / "w.db"
    limit = 1024 * 1024
    store = SqliteStore(path, wal_limit=limit)
    await store.setup()
    (rid,) = await _make_runs(store, 1)
    largest = 0
    for step in range(1, 3001):
        commit = Commit(
            checkpoint=Checkpoint(rid, step, [["t", "a", {"n": "x" * 500}]], []),
            events=[Event(rid, 0, "step_finished", 0.0, step, data={"n": step})],
        )
        await store.commit(rid, 1, commit)
        largest = max(largest, os.path.getsize(f"{path}-wal"))
    # without the bound this run leaves tens of MB of WAL; the bound allows what a few
    # commits add while the background checkpointer holds the checkpoint lock
    assert largest <= 6 * limit
    assert store._wal.restarts > 0
    assert len(await store.list_events(rid, limit=5000)) == 3000
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT MAX(step) FROM tether_checkpoints").fetchone()[0] == 3000
    db.close()


async def test_a_reader_on_an_old_snapshot_defers_the_wal_restart_without_stalling_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path, wal_limit=256 * 1024, busy_timeout=60.0)
    await store.setup()
    (rid,) = await _make_runs(store, 1)
    reader = sqlite3.connect(path, isolation_level=None)  # another process's long read
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM tether_runs").fetchone()
    for step in range(1, 301):
        await store.commit(rid, 1, _step(rid, step))
    assert store._wal.restarts == 0  # the log could not start over under the reader
    reader.execute("COMMIT")
    reader.close()
    for step in range(301, 601):
        await store.commit(rid, 1, _step(rid, step))
    assert store._wal.restarts > 0
    assert (await store.get_run(rid)).step == 600
    await store.close()


async def test_a_batch_reads_its_runs_heads_at_once_and_a_second_commit_sees_the_first(
    tmp_path: Path,
) -> None:
    """Commits that carry their run as ``base`` have the heads of their runs read in one
    statement for the batch; a run committed twice in one batch is read again for the second
    commit, which then finds its ``base`` stale and starts from the run as the first left it."""
    store = SqliteStore(tmp_path / "h.db")
    await store.setup()
    ids = await _make_runs(store, 5)
    bases = {rid: await store.get_run(rid) for rid in ids}
    calls = _spy_on_statements(store)

    def stepped(rid: str, step: int) -> Commit:
        commit = _step(rid, step)
        commit.base = bases[rid]
        return commit

    results = await asyncio.gather(
        *(store.commit(rid, 1, stepped(rid, 1)) for rid in ids),
        store.commit(ids[0], 1, stepped(ids[0], 2)),  # same base: one commit behind by then
    )
    store._tx.db = store._db
    assert calls.count("BEGIN") == 1
    assert calls.count("SELECT") == 3  # the batch's heads, then r0's head and whole row again
    first, *_others, again = results
    stored = await store.get_run(ids[0])
    assert again == stored and (stored.step, stored.event_seq) == (2, first.event_seq + 1)
    for rid, got in zip(ids[1:], results[1:5], strict=True):
        assert got == await store.get_run(rid)
    await store.close()
