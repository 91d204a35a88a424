"""The events the store counts are read from their own partial indexes (schema v18): a page of
runs' usage reads their model calls only, the takeover count the takeovers only; neither
reads every event. Checked on SQLite's own query plans."""

from __future__ import annotations

from pathlib import Path

from tether.store.lease_takeovers import count_sql
from tether.store.run_usage import runs_usage_sql
from tether.store.sqlite import SqliteStore


def _plan(store: SqliteStore, sql: str) -> list[str]:
    params = [None] * sql.count("?")
    return [row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


async def test_runs_usage_reads_the_model_call_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    plan = _plan(store, runs_usage_sql("sqlite", "tether_", 8))
    await store.close()
    assert any("tether_events USING INDEX tether_events_model_calls" in s for s in plan), plan
    assert not any(s.startswith("SCAN tether_") for s in plan), plan


async def test_the_takeover_count_reads_the_takeover_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plans.db")
    await store.setup()
    plan = _plan(store, count_sql("tether_"))
    await store.close()
    assert plan == ["SCAN tether_events USING INDEX tether_events_takeovers"], plan
