"""Leased PLANNED runs on a PostgreSQL store, for the batched-commit tests."""

from __future__ import annotations

from tether.core.lifecycle import RunStatus
from tether.store.postgres import PostgresStore
from tether.store.types import Checkpoint, RunRecord


async def leased_runs(store: PostgresStore, n: int) -> list[tuple[RunRecord, int]]:
    """``n`` new PLANNED runs (``r0``..), each leased by ``"me"``: (the run, its token)."""
    out = []
    for i in range(n):
        run = RunRecord(f"r{i}", "wf", RunStatus.PLANNED)
        await store.create_run(run, Checkpoint(run.run_id, 0, None, [], {"i": i}), [])
        lease = await store.acquire_lease(run.run_id, "me", 30.0)
        assert lease is not None
        out.append((await store.get_run(run.run_id), lease.token))
    return out
