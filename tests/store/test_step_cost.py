"""A step's commit costs what the step changes, not the size of the run's input.

The run loop commits once per step and passes its copy of the run (``Commit.base``): the store
must neither read nor return the run's large columns (input, result, metadata) on that path,
and must still return the same run ``get_run`` reads. No timing: the tests watch what the
commit reads (SQLite's statement trace, the rows PostgreSQL sends back, the blobs decoded).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.core.lifecycle import RunStatus as S
from tether.store import RunStore, SqliteStore, rows, schema
from tether.store.types import Checkpoint, Commit, Event, RunRecord
from tether.testing.store_conformance import StoreFactory
from tether.testing.store_helpers import create

pytestmark = pytest.mark.asyncio

BIG = {"blob": "x" * 1_000_000, "n": 0}
LARGE = 100_000  # bytes: any value this large read back by a commit is the input


def _step(run_id: str, step: int, seq: int) -> Commit:
    cp = Checkpoint(run_id, step, [[f"{step}:a:0", "a", {"n": step}]], [{"id": "x", "node": "a"}])
    return Commit(checkpoint=cp, events=[Event(run_id, seq, "step_finished", 1.0, step)])


@pytest.fixture
def big_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of every large blob a store decodes into a run record."""
    seen: list[int] = []
    real = rows.loads

    def counting(blob: Any) -> Any:
        if isinstance(blob, bytes | memoryview) and len(blob) >= LARGE:
            seen.append(len(blob))
        return real(blob)

    monkeypatch.setattr(rows, "loads", counting)
    return seen


async def _leased(store: RunStore, run_id: str) -> tuple[int, Any]:
    await create(store, run_id, input=BIG, metadata={"k": "v"})
    lease = await store.acquire_lease(run_id, "w1", 60)
    assert lease is not None
    return lease.token, await store.get_run(run_id)


async def test_a_step_commit_with_base_returns_the_stored_run_without_decoding_the_input(
    store_factory: StoreFactory, big_decodes: list[int]
) -> None:
    store = await store_factory()
    token, run = await _leased(store, "r1")
    big_decodes.clear()
    for step in range(1, 6):
        commit = _step("r1", step, run.event_seq + 1)
        if step == 3:
            commit.result, commit.set_result = {"answer": [1, 2]}, True
            commit.metadata = {"replans": 1}
            commit.status = S.VALIDATING
            commit.transitions = [(S.EXECUTING, S.VALIDATING, "w", "")]
        commit.base = run
        run = await store.commit("r1", token, commit)
    assert big_decodes == []  # five steps, not one decode of the 1 MB input
    stored = await store.get_run("r1")
    assert run == stored
    assert (run.step, run.event_seq, run.status) == (5, 5, S.VALIDATING)
    assert (run.result, run.metadata) == ({"answer": [1, 2]}, {"k": "v", "replans": 1})
    assert run.input == BIG


async def test_a_stale_base_is_noticed_and_the_run_read_whole(
    store_factory: StoreFactory,
) -> None:
    """A base that missed a commit under the same token (its event counter is behind) is not
    trusted: the commit returns the run as stored, the other commit's result included."""
    store = await store_factory()
    token, stale = await _leased(store, "r1")
    other = _step("r1", 1, 1)
    other.result, other.set_result = "from the other commit", True
    await store.commit("r1", token, other)
    run = await store.commit(
        "r1",
        token,
        Commit(
            checkpoint=_step("r1", 2, 2).checkpoint, events=[Event("r1", 2, "e", 1.0)], base=stale
        ),
    )
    assert run == await store.get_run("r1")
    assert run.result == "from the other commit"


async def test_a_base_from_another_token_is_ignored(store_factory: StoreFactory) -> None:
    store = await store_factory()
    token, run = await _leased(store, "r1")
    cancelled = await store.commit("r1", None, Commit(metadata={"admin": True}))
    assert cancelled.lease_token == token + 1
    relet = await store.acquire_lease("r1", "w2", 60)
    assert relet is not None
    done = await store.commit("r1", relet.token, Commit(base=run))  # run: the old token's copy
    assert done == await store.get_run("r1")
    assert done.metadata == {"k": "v", "admin": True}


async def test_sqlite_step_commit_reads_no_large_column(tmp_path: Any) -> None:
    """The statements a step commit issues on SQLite select only the run's small columns."""
    store = SqliteStore(tmp_path / "runs.db")
    await store.setup()
    try:
        token, run = await _leased(store, "r1")
        issued: list[str] = []
        store._db.set_trace_callback(issued.append)
        run = await store.commit("r1", token, Commit(**vars_of(_step("r1", 1, 1)), base=run))
        store._db.set_trace_callback(None)
        selects = [s for s in issued if re.search(r"\bSELECT\b", s, re.I) and "runs" in s]
        assert selects, issued
        for sql in selects:
            assert not re.search(r"\b(input|result|metadata)\b|\*", sql), sql
        assert run == await store.get_run("r1")
    finally:
        await store.close()


def vars_of(commit: Commit) -> dict[str, Any]:
    return {"checkpoint": commit.checkpoint, "events": commit.events}


@pytest.mark.postgres
async def test_postgres_step_commit_fetches_no_large_value(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL sends back only the small columns of a step commit (the commit function's
    full row stays in the server)."""
    import psycopg

    from tether.store.postgres import PostgresStore

    store = PostgresStore(pg_dsn, schema=pg_schema, pool_size=2)
    await store.setup()
    try:
        token, run = await _leased(store, "r1")
        fetched: list[Any] = []
        real = psycopg.AsyncCursor.fetchone

        async def recording(self: Any) -> Any:
            row = await real(self)
            fetched.append(row)
            return row

        monkeypatch.setattr(psycopg.AsyncCursor, "fetchone", recording)
        run = await store.commit("r1", token, Commit(**vars_of(_step("r1", 1, 1)), base=run))
        monkeypatch.undo()
        assert fetched
        for row in fetched:
            assert all(not isinstance(v, bytes) or len(v) < LARGE for v in row), len(str(row))
        assert run == await store.get_run("r1")
    finally:
        await store.close()


class Counter(TypedDict, total=False):
    blob: str
    n: int
    limit: int


async def tick(state: Counter, ctx: RunContext) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1}


def _workflow() -> Any:
    g = Graph(Counter, name="step_cost")
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", lambda s: END if s["n"] >= s["limit"] else "tick")
    return g.compile()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_a_longer_run_decodes_its_input_no_more_often(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest, big_decodes: list[int]
) -> None:
    """End to end: a 30-step run decodes its 1 MB input as often as a 3-step run does."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/runs.db"
    else:
        url = f"{request.getfixturevalue('pg_dsn')}?schema={request.getfixturevalue('pg_schema')}"
    wf = _workflow()
    counts = []
    async with Runtime(url, workflows=[wf]) as rt:
        for limit in (3, 30):
            big_decodes.clear()
            res = await rt.run(wf, {**BIG, "limit": limit})
            assert res.status is S.COMPLETED
            counts.append(len(big_decodes))
    assert counts[0] == counts[1], counts


async def test_sqlite_keeps_the_input_out_of_the_run_row(tmp_path: Any) -> None:
    """SQLite rewrites a whole row on every UPDATE: the input lives in ``run_inputs``, so a
    step's UPDATE of the run row never copies it. Every read still returns it; deleting or
    purging the run removes it."""
    store = SqliteStore(tmp_path / "runs.db")
    await store.setup()
    try:
        token, run = await _leased(store, "r1")
        await create(store, "r2", input=BIG, idempotency_key="k2")
        await store.commit("r1", token, Commit(**vars_of(_step("r1", 1, 1)), base=run))
        db = store._db
        assert db.execute("SELECT COUNT(input) FROM tether_runs").fetchone() == (0,)
        assert (await store.get_run("r1")).input == BIG
        assert [r.input for r in await store.list_runs()] == [BIG, BIG]
        again, created = await store.create_run(
            RunRecord("r3", "wf", S.EXECUTING, input={"other": 1}, idempotency_key="k2"),
            Checkpoint("r3", 0, [], [], {}),
            [],
        )
        assert (again.run_id, again.input, created) == ("r2", BIG, False)
        await store.delete_run("r2")
        assert db.execute("SELECT run_id FROM tether_run_inputs").fetchall() == [("r1",)]
    finally:
        await store.close()


async def test_a_v5_sqlite_database_moves_its_inputs_out_of_the_run_rows(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.db"
    with monkeypatch.context() as m:
        m.setattr(schema, "_VERSIONS", schema._VERSIONS[:5])
        m.setattr(schema, "LATEST_VERSION", 5)
        old = SqliteStore(path)
        await old.setup()
        # rows as tether wrote them at v5 (the input in the run row), in v5's columns only
        v5 = "INSERT INTO tether_runs (run_id, workflow, status, input, created_at, "
        v5 += "updated_at, metadata) VALUES (?, ?, 'EXECUTING', ?, 0, 0, ?)"
        old._db.execute(v5, ("r1", "wf", rows.enc(BIG), b"{}"))
        old._db.execute(v5, ("r2", "wf", None, b"{}"))  # no input
        await old.close()
    store = SqliteStore(path)
    await store.setup()
    try:
        assert (await store.get_run("r1")).input == BIG
        assert (await store.get_run("r2")).input is None
        assert store._db.execute("SELECT COUNT(input) FROM tether_runs").fetchone() == (0,)
    finally:
        await store.close()
