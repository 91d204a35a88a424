"""SQLite under faults: a full disk reports itself, not a follow-on error."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tests.small_disk import fill
from tether import END, START, Graph, RunStatus, Runtime
from tether.store.sqlite import SqliteStore


class S(TypedDict):
    blob: str


def _filler() -> Any:
    g = Graph(S, name="filler")
    # incompressible and bigger than the disk: the commit's WAL write cannot fit
    g.add_node("fill", lambda s: {"blob": os.urandom(800_000).hex()})
    g.add_edge(START, "fill")
    g.add_edge("fill", END)
    return g.compile()


async def test_a_full_disk_is_reported_as_such_to_the_caller_and_in_the_run(
    small_disk: Path,
) -> None:
    store = SqliteStore(small_disk / "runs.db")
    async with Runtime(store, recover=False) as rt:
        with pytest.raises(Exception, match="database or disk is full") as info:
            await rt.run(_filler(), {"blob": ""})
        assert "no transaction is active" not in repr(info.value.__context__)
        (run,) = await rt.list_runs()
        assert run.status is RunStatus.FAILED
        assert run.error is not None
        assert "database or disk is full" in run.error["message"]
        # the store is still usable once there is room again
        assert (await rt.get_run(run.run_id)).run_id == run.run_id


async def test_opening_a_store_on_a_full_disk_says_the_disk_is_full(small_disk: Path) -> None:
    """With no store open, SQLite's -wal and -shm files are gone; on a full disk it cannot make
    them again and said 'disk I/O error' (what `tether worker` and `tether runs list` printed
    on a restart while the disk was full): now the error says the disk is full, and how full."""
    store = SqliteStore(small_disk / "runs.db")
    await store.setup()
    await store.close()
    filler = fill(small_disk)
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full") as info:
        SqliteStore(small_disk / "runs.db")
    assert "bytes free" in str(info.value) and str(small_disk) in str(info.value)
    assert info.value.sqlite_errorcode == 13  # SQLITE_FULL: a 503 through the server
    filler.unlink()
    again = SqliteStore(small_disk / "runs.db")  # room again: it opens
    await again.setup()
    await again.close()
