"""The PostgreSQL commit function: one locking statement per step, installed on upgrade too."""

from __future__ import annotations

import psycopg
import pytest

from tether.core.errors import IllegalTransitionError, LeaseLostError, RunNotFoundError
from tether.core.lifecycle import RunStatus
from tether.store import schema
from tether.store.postgres import PostgresStore
from tether.store.types import Checkpoint, Commit, RunRecord

pytestmark = pytest.mark.postgres


def _commit_function(dsn: str, schema_name: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = 'tether_commit'",
            (schema_name,),
        ).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_v3_database_gets_the_single_statement_commit_and_keeps_its_errors(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's commit locks the run row with its UPDATE (no SELECT ... FOR UPDATE before it:
    one statement and one row lock, with its WAL record, fewer per step); a database written by
    a tether at schema v3 is upgraded to it, and refusals still say why."""
    with monkeypatch.context() as m:
        m.setattr(schema, "_VERSIONS", schema._VERSIONS[:3])
        m.setattr(schema, "LATEST_VERSION", 3)
        old = PostgresStore(pg_dsn, schema=pg_schema)
        await old.setup()
        await old.close()
    store = PostgresStore(pg_dsn, schema=pg_schema)
    try:
        await store.setup()
        body = _commit_function(pg_dsn, pg_schema).upper()
        assert "FOR UPDATE" not in body
        _run, _ = await store.create_run(
            RunRecord("r1", "wf", RunStatus.RECEIVED),
            Checkpoint("r1", 0, [], [], {}),
            [(None, RunStatus.RECEIVED, "t", "created")],
        )
        lease = await store.acquire_lease("r1", "me", 30.0)
        assert lease is not None
        planned = Commit(transitions=[(RunStatus.RECEIVED, RunStatus.PLANNED, "t", "plan")])
        planned.status = RunStatus.PLANNED
        rec = await store.commit("r1", lease.token, planned)
        assert rec.status is RunStatus.PLANNED and rec.lease_token == lease.token
        with pytest.raises(LeaseLostError):
            await store.commit("r1", lease.token + 1, Commit(status=RunStatus.EXECUTING))
        with pytest.raises(IllegalTransitionError):  # PLANNED -> PLANNED is not a step it takes
            await store.commit(
                "r1",
                lease.token,
                Commit(transitions=[(RunStatus.RECEIVED, RunStatus.PLANNED, "t", "again")]),
            )
        with pytest.raises(RunNotFoundError):
            await store.commit("nope", 1, Commit(status=RunStatus.EXECUTING))
        assert (await store.get_run("r1")).status is RunStatus.PLANNED
    finally:
        await store.close()
