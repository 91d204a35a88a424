"""PostgreSQL reads the queue in claim order from its index (schema v23): a claim with 5,000
runs queued reads a few index entries, not every queued run sorted (a claim of 16 took about
250 ms with 100,000 runs queued, reading them all). Checked on PostgreSQL's own plan, with the
table's statistics gathered as autovacuum would."""

from __future__ import annotations

import psycopg
import pytest

from tests.store.pg_backlog import copy_run
from tether.core.lifecycle import RunStatus
from tether.store.postgres import PostgresStore
from tether.testing.store_helpers import create

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("dead", [0, 2])
async def test_a_claim_reads_the_queue_index_not_the_backlog(
    pg_dsn: str, pg_schema: str, dead: int
) -> None:
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    try:
        await create(store, "r0", status=RunStatus.PLANNED)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            copy_run(conn, pg_schema, 5000)  # 5,000 more like r0
            sql = store._sql.claim_runs(1, 0, dead, None)
            later = 1e12
            params = [later, *(f"dead{i}" for i in range(dead)), later, "wf", 16]
            params += [later, "wf", 16, 16, "w", later + 30]
            rows = conn.execute(f"EXPLAIN {sql.replace('?', '%s')}", params)
            plan = "\n".join(r[0] for r in rows)
        assert "tether_runs_queued" in plan, plan
        assert "Seq Scan on tether_runs" not in plan, plan
        leases = await store.claim_runs("w", 30, limit=16, workflows=["wf"])
        assert [lease.run_id for lease in leases] == ["r0", *(f"r{i}" for i in range(1, 16))]
    finally:
        await store.close()
