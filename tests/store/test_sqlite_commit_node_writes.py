"""A node write that lands with a commit (a resume's answer) is stored as ``put_node_write``
stores it: the commit writes it without the fencing sub-select (the commit checked the fence
under the same lock), and must keep every value's SQLite type and the fence's refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.core.errors import LeaseLostError
from tether.core.lifecycle import RunStatus
from tether.store.sqlite import SqliteStore
from tether.store.types import Checkpoint, Commit, Event, NodeWrite, RunRecord

COLUMNS = "run_id, step, task_id, node, status, writes, goto, interrupt, resume, created_at, events"


def _write(rid: str, task: str, **kw: object) -> NodeWrite:
    return NodeWrite(rid, 3, task, "ask", "interrupted", **kw)  # type: ignore[arg-type]


def _stored(store: SqliteStore, rid: str, task: str) -> tuple[object, ...]:
    """The row's values (created_at aside) and the SQLite type of each column."""
    row = store._db.execute(
        f"SELECT {COLUMNS}, "
        + ", ".join(f"typeof({c})" for c in COLUMNS.split(", "))
        + " FROM tether_node_writes WHERE run_id = ? AND task_id = ?",
        (rid, task),
    ).fetchone()
    assert row is not None
    return row[:9] + row[10:]


async def test_a_commits_node_write_is_stored_as_put_node_write_stores_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.setup()
    try:
        for rid in ("put", "commit"):
            await store.create_run(
                RunRecord(rid, "wf", RunStatus.EXECUTING, owner="me", lease_token=1),
                Checkpoint(rid, 0, [], [], {}),
                [(None, RunStatus.EXECUTING, "t", "")],
            )
        bare = {"task_id": "t1"}
        full = {
            "task_id": "t2",
            "writes": {"x": 1},
            "goto": ["b"],
            "interrupt": {"ask": "?"},
            "resume": ["yes"],
            "events": [Event("", 0, "note", 1.5, 3, "ask", {"k": "v"})],
        }
        for kw in (bare, full):
            task = str(kw["task_id"])
            rest = {k: v for k, v in kw.items() if k != "task_id"}
            await store.put_node_write(1, _write("put", task, **rest))
            await store.commit("commit", 1, Commit(node_writes=[_write("commit", task, **rest)]))
            put = _stored(store, "put", task)
            assert _stored(store, "commit", task) == ("commit", *put[1:])
        # written again (the same task): the upsert replaces it, as put_node_write's does
        again = _write("commit", "t2", writes={"x": 2}, resume=["no"])
        await store.commit("commit", 1, Commit(node_writes=[again]))
        await store.put_node_write(1, _write("put", "t2", writes={"x": 2}, resume=["no"]))
        assert _stored(store, "commit", "t2") == ("commit", *_stored(store, "put", "t2")[1:])
        # a stale token writes nothing, with the commit or without
        with pytest.raises(LeaseLostError):
            await store.commit("commit", 7, Commit(node_writes=[_write("commit", "t3")]))
        n = store._db.execute(
            "SELECT count(*) FROM tether_node_writes WHERE task_id = 't3'"
        ).fetchone()
        assert n == (0,)
    finally:
        await store.close()
