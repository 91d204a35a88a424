"""Listing runs reads one page of an index: no scan, no sort of every matching run (70 ms at
100k runs before the v3 indexes). Checked on SQLite's own query plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.core.lifecycle import RunStatus
from tether.store.sql_queue_limits import limited_claim
from tether.store.sqlite import SqliteStore


def _plan(store: SqliteStore, **filters: object) -> list[str]:
    """The plan of the statement ``list_runs(**filters)`` runs, read from the statement cache
    key the store builds (filters as for ``Statements.list_runs``)."""
    status = filters.get("status")
    sql = store._sql.list_runs(
        None if status is None else len(status),  # type: ignore[arg-type]
        "workflow" in filters,
        "parent" in filters,
        filters.get("cursor"),  # type: ignore[arg-type]
    )
    params = [None] * sql.count("?")
    return [row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"status": ["COMPLETED"]}, "tether_runs_status_created"),
        ({"status": ["COMPLETED"], "cursor": "before"}, "tether_runs_status_created"),
        ({"status": ["COMPLETED"], "cursor": "after"}, "tether_runs_status_created"),
        ({"workflow": "wf"}, "tether_runs_workflow_created"),
        ({"workflow": "wf", "cursor": "before"}, "tether_runs_workflow_created"),
    ],
)
async def test_filtered_listing_reads_an_index_in_order(
    tmp_path: Path, filters: dict[str, object], index: str
) -> None:
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    plan = _plan(store, **filters)
    await store.close()
    assert any(f"USING INDEX {index}" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # no sort of all matches
    assert not any(step.startswith("SCAN") for step in plan), plan


async def test_cursor_pages_cover_a_big_listing_exactly_once(tmp_path: Path) -> None:
    from tether.store.rows import run_params
    from tether.store.types import RunRecord

    store = SqliteStore(tmp_path / "big.db")
    await store.setup()
    rows = []
    for i in range(3000):
        rec = RunRecord(f"r{i:05d}", f"wf{i % 3}", [RunStatus.COMPLETED, RunStatus.FAILED][i % 2])
        rec.created_at = rec.updated_at = float(i // 4)  # ties: four runs per instant
        rows.append(run_params(rec))
    with store._tx as db:
        db.executemany(f"INSERT INTO tether_runs VALUES ({', '.join('?' * len(rows[0]))})", rows)
    seen: list[str] = []
    page = await store.list_runs(status=[RunStatus.COMPLETED], workflow="wf1", limit=64)
    while page:
        seen += [r.run_id for r in page]
        last = page[-1].run_id
        page = await store.list_runs(
            status=[RunStatus.COMPLETED], workflow="wf1", limit=64, before=last
        )
    want = sorted(
        (f"r{i:05d}" for i in range(3000) if i % 2 == 0 and i % 3 == 1),
        key=lambda r: (int(r[1:]) // 4, r),
        reverse=True,
    )
    assert seen == want
    await store.close()


@pytest.mark.parametrize("cursor", [None, "before", "after"])
async def test_several_statuses_merge_one_index_read_per_status(
    tmp_path: Path, cursor: str | None
) -> None:
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    plan = _plan(store, status=["COMPLETED", "FAILED", "ESCALATED"], cursor=cursor)
    await store.close()
    reads = [step for step in plan if "tether_runs" in step]
    assert len(reads) == 3, plan
    assert all("USING INDEX tether_runs_status_created (status=?" in s for s in reads), plan
    assert not any(step.startswith("SCAN tether_runs") for step in plan), plan


async def test_the_owners_of_live_leases_are_read_from_an_index(tmp_path: Path) -> None:
    """The dead-owner scan (once a second in every runtime) and the running counts of queue
    limits look for runs with a live lease; with a backlog of 100k submitted runs a scan of
    every active run took 8 ms a look on each backend, the (status, lease expiry) index 0.1 ms.
    (Dropping that index lets PostgreSQL update a run row in place on a claim or a renewal;
    measured side by side, it bought no throughput, so the index stays.)"""
    from tether.store.sql_base import ACTIVE_VALUES

    store = SqliteStore(tmp_path / "owners.db")
    await store.setup()
    plan = [
        row[3]
        for row in store._db.execute(
            f"EXPLAIN QUERY PLAN {store._sql.lease_owners}", (*ACTIVE_VALUES, 0.0)
        )
    ]
    await store.close()
    assert any(
        "USING INDEX tether_runs_claim (status=? AND lease_expires_at>?)" in step for step in plan
    ), plan


async def test_a_steps_model_calls_are_read_by_the_model_call_index(tmp_path: Path) -> None:
    """A task that replays a model call reads its step's model calls: the run's model calls
    (the v18 partial index), not every event of a long run."""
    from tether.store.usage import step_model_calls_sql

    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    sql = step_model_calls_sql("sqlite", "tether_")
    plan = [row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", ["r", 1])]
    await store.close()
    assert any("USING INDEX tether_events_model_calls" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


@pytest.mark.parametrize("shape", [(None, 0, 0, None), (2, 3, 1, 2)])
async def test_the_claim_reads_the_queue_in_claim_order(
    tmp_path: Path, shape: tuple[int | None, int, int, int | None]
) -> None:
    """The claim's work does not grow with the backlog (schema v23): unowned runs come from the
    queue's own index in claim order (no sort of them all), owned ones from the range of
    expired leases; with every filter a worker may send (workflows, excluded runs, dead
    owners, queues)."""
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    sql = store._sql.claim_runs(*shape)
    plan = [
        row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", [None] * sql.count("?"))
    ]
    await store.close()
    assert "SCAN tether_runs USING INDEX tether_runs_queued" in plan, plan
    queued = plan.index("SCAN tether_runs USING INDEX tether_runs_queued")
    assert not plan[queued + 1].startswith("USE TEMP B-TREE"), plan  # read in order, no sort
    assert any(
        step.startswith(
            "SEARCH tether_runs USING INDEX tether_runs_claim (status=? AND lease_expires_at>?"
        )
        for step in plan
    ), plan
    assert not any(
        step.startswith("SCAN tether_runs") and "tether_runs_queued" not in step for step in plan
    ), plan


@pytest.mark.parametrize("shape", [(None, 0, 0, None), (2, 3, 1, 2)])
async def test_the_claim_under_limits_reads_the_queue_in_claim_order(
    tmp_path: Path, shape: tuple[int | None, int, int, int | None]
) -> None:
    """The claim under shared limits reads its candidates as the plain claim does (schema
    v24): from the queue's index in claim order and the range of expired leases, not every
    claimable run sorted (a claim of 16 took 100-250 ms with 100,000 runs queued and a
    tenant limit set); the runs each limit counts come from the range of live leases."""
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    sql = limited_claim(store._sql.dialect, *shape)
    plan = [
        row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", [None] * sql.count("?"))
    ]
    await store.close()
    assert "SCAN tether_runs USING INDEX tether_runs_queued" in plan, plan
    queued = plan.index("SCAN tether_runs USING INDEX tether_runs_queued")
    assert not plan[queued + 1].startswith("USE TEMP B-TREE"), plan  # read in order, no sort
    owned = "SEARCH tether_runs USING INDEX tether_runs_claim (status=? AND lease_expires_at>?"
    assert any(step.startswith(owned) for step in plan), plan
    live = "SEARCH r USING INDEX tether_runs_claim (status=? AND lease_expires_at>?)"
    assert live in plan, plan  # the running count
    assert not any(
        step.startswith(("SCAN tether_runs", "SCAN r")) and "tether_runs_queued" not in step
        for step in plan
    ), plan
    assert not any(
        step.startswith("SEARCH tether_runs USING INDEX") and "lease_expires_at" not in step
        for step in plan
    ), plan  # no read of every run of a status, workflow or queue
