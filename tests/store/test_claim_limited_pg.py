"""PostgreSQL's claim under shared limits (the ``claim_limited`` function, schema v24) reads its
candidates in claim order from indexes like the plain claim: with 5,000 runs queued it reads a
few entries of the queue's index, not every claimable run sorted (a claim of 16 took 100-250
ms with 100,000 runs queued and a tenant limit set, reading them all; now 3-8 ms). The statement runs
inside the function, where EXPLAIN cannot see it: its plan is read from ``auto_explain`` (nested
statements, sent to this session as notices), after more calls than the plan cache makes
custom plans for, with the table's statistics gathered as autovacuum would."""

from __future__ import annotations

import psycopg
import pytest

from tests.store.pg_backlog import copy_run
from tether.core.lifecycle import RunStatus
from tether.store import pg_claim
from tether.store.postgres import PostgresStore
from tether.testing.store_helpers import create

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("filters", [False, True])
async def test_the_limited_claim_reads_the_queue_index_not_the_backlog(
    pg_dsn: str, pg_schema: str, filters: bool
) -> None:
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    try:
        await create(store, "r0", status=RunStatus.PLANNED, tenant="acme")
        await store.set_queue_limit("tenant", "acme", max_running=1_000)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            copy_run(conn, pg_schema, 5000)  # 5,000 more like r0
            try:
                conn.execute("LOAD 'auto_explain'")
            except psycopg.Error as exc:  # pragma: no cover - a server without the contrib module
                pytest.skip(f"auto_explain is not available: {exc}")
            for setting in ("log_min_duration = 0", "log_nested_statements = on"):
                conn.execute(f"SET auto_explain.{setting}")
            conn.execute("SET auto_explain.log_level = notice")
            notices: list[str] = []
            conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
            sql = store._sql.dialect.sql(pg_claim.call(store._sql.dialect.prefix))
            later = 1e12
            wfs, queues, exclude, dead = (
                (["wf", "other"], ["default", "mail"], ["x1", "x2"], ["gone"])
                if filters
                else (None, None, [], [])
            )
            claimed: list[str] = []
            for i in range(8):  # past the plan cache's five custom plans
                notices.clear()
                args = pg_claim.params(
                    later, dead, wfs, queues, exclude, 64, 16, f"w{i}", later + 30
                )
                claimed += [r[0] for r in conn.execute(sql, args)]
        plan = "\n".join(notices)
        assert "tether_runs_queued" in plan, plan
        assert "Seq Scan on tether_runs" not in plan, plan
        assert len(claimed) == 128  # the first 128 in claim order: r0 to r127
        assert set(claimed) == {"r0", *(f"r{i}" for i in range(1, 128))}
    finally:
        await store.close()


async def test_a_v23_schema_gets_the_new_claim_function(pg_dsn: str, pg_schema: str) -> None:
    """v24 replaces the function a v23 schema holds (same arguments, same rows)."""
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    await store.close()
    fn = f'"{pg_schema}".tether_claim_limited'
    body = f"SELECT pg_get_functiondef('{fn}'::regproc)"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert "0 AS rk" in str(conn.execute(body).fetchone())  # the owned runs' own branch
        conn.execute(  # as v23 left it: the v18 function (here a stand-in of the same shape)
            f"CREATE OR REPLACE FUNCTION {fn}(p_active text[], p_now double precision, "
            "p_dead text[], p_workflows text[], p_queues text[], p_exclude text[], "
            "p_lookahead integer, p_limit integer, p_owner text, p_expires double precision) "
            "RETURNS TABLE (run_id text, lease_token bigint, lease_expires_at double precision, "
            "priority integer, created_at double precision, previous_owner text) "
            "LANGUAGE plpgsql AS $fn$ BEGIN RETURN; END $fn$"
        )
        conn.execute(f'DELETE FROM "{pg_schema}".tether_schema_version WHERE version = 24')
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.setup()
    await store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert "0 AS rk" in str(conn.execute(body).fetchone())
        assert conn.execute(
            f'SELECT max(version) FROM "{pg_schema}".tether_schema_version'
        ).fetchone() == (24,)
