"""A SQLite store whose file is deleted, replaced, or loses its WAL while it is open.

SQLite keeps writing to a deleted file (its inode lives while it is open), so a runtime whose
database directory was removed (``rm -rf .tether``, a temp-file cleaner) went on completing runs
and accepting new ones, all of it gone when the process ended, with not a word; with its WAL
deleted, a process opened afterwards read a state from before the deletion. Now the store
notices within ``LOOK_EVERY`` of the deletion, before the next commit it is asked for, and
refuses every operation from then on with ``StoreFileLostError`` naming what happened: the
runs stop, ``wait()`` says why."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.core.errors import StoreFileLostError
from tether.store.sqlite import SqliteStore
from tether.store.sqlite_wal import LOOK_EVERY

HANG_GUARD = 120.0  # seconds; only ever reached when something hangs


class S(TypedDict, total=False):
    n: int


def vanish(how: str, db: Path) -> None:
    if how == "directory":
        shutil.rmtree(db.parent)
    elif how == "file":
        os.unlink(db)
    elif how == "wal":
        os.unlink(f"{db}-wal")
    elif how == "replaced":  # a restore or a copy moved over it while it was open
        copy = db.with_name("copy.db")
        shutil.copyfile(db, copy)
        os.replace(copy, db)


WHAT = {
    "directory": "database file was deleted",
    "file": "database file was deleted",
    "wal": "its WAL file was deleted",
    "replaced": "database file was replaced",
}


@pytest.mark.parametrize("how", list(WHAT))
async def test_a_store_whose_file_vanished_refuses_to_go_on(tmp_path: Path, how: str) -> None:
    parked, go = asyncio.Event(), asyncio.Event()

    async def first(state: S) -> dict[str, Any]:
        return {"n": 1}

    async def later(state: S, ctx: RunContext) -> dict[str, Any]:
        parked.set()
        await go.wait()
        return {"n": state["n"] + 1}

    g = Graph(S, name="vanish")
    g.add_node("first", first).add_node("later", later)
    g.add_edge(START, "first").add_edge("first", "later").add_edge("later", END)
    wf = g.compile()
    db = tmp_path / "data" / "runs.db"
    async with Runtime(SqliteStore(db), lease_ttl=5.0, workflows=[wf]) as rt:
        handle = await rt.start(wf, {"n": 0})
        await asyncio.wait_for(parked.wait(), HANG_GUARD)
        vanish(how, db)
        time.sleep(LOOK_EVERY)  # the store looks at its file at most this often
        go.set()
        with pytest.raises(StoreFileLostError, match=WHAT[how]) as info:
            await asyncio.wait_for(handle.wait(), HANG_GUARD)
        assert str(db) in str(info.value) and "refuses every operation" in str(info.value)
        with pytest.raises(StoreFileLostError):
            await rt.start(wf, {"n": 0})
    if how in ("wal", "replaced"):  # what another process finds there: no step after it
        fresh = SqliteStore(db)
        try:
            await fresh.setup()
            runs = await fresh.list_runs()
            assert [r.step for r in runs] in ([], [0], [1]), runs
        finally:
            await fresh.close()
