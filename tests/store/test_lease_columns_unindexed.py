"""No index of the runs table holds a column that a claim or a lease renewal writes (schema v19).

Those two updates run for every run (a renewal every ``lease_ttl / 3`` while it runs); an indexed
column among them makes PostgreSQL write a new entry into every index of the table on each one
instead of updating the row in place (HOT), and the claim then reads past those entries until
vacuum removes them (which a long-open transaction elsewhere holds off). SQLite rewrites the
index entries of such a column on each update too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tether.store import SqliteStore

LEASE_COLUMNS = {"owner", "lease_token", "lease_expires_at"}


async def test_sqlite_runs_indexes_hold_no_lease_column(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    await store.setup()
    await store.close()
    with sqlite3.connect(tmp_path / "runs.db") as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tether_runs'"
            )
        ]
        columns = {n: {r[2] for r in db.execute(f"PRAGMA index_info('{n}')")} for n in names}
    assert "tether_runs_status_created" in columns  # the status lookups have their index
    assert {n: c & LEASE_COLUMNS for n, c in columns.items() if c & LEASE_COLUMNS} == {}


@pytest.mark.postgres
async def test_postgres_runs_indexes_hold_no_lease_column(pg_dsn: str, pg_schema: str) -> None:
    import psycopg

    from tether.store.postgres import PostgresStore

    store = PostgresStore(pg_dsn, schema=pg_schema, pool_size=1)
    await store.setup()
    await store.close()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT i.relname, a.attname FROM pg_index x "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey) "
            "WHERE s.nspname = %s AND t.relname = 'tether_runs'",
            (pg_schema,),
        ).fetchall()
        expressions = conn.execute(
            "SELECT count(*) FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace s ON s.oid = t.relnamespace "
            "WHERE s.nspname = %s AND t.relname = 'tether_runs' "
            "AND (x.indexprs IS NOT NULL OR x.indpred IS NOT NULL)",
            (pg_schema,),
        ).fetchone()
    assert rows and {r[0] for r in rows} >= {"tether_runs_status_created", "tether_runs_pkey"}
    assert [r for r in rows if r[1] in LEASE_COLUMNS] == []
    assert expressions == (0,)  # no expression or partial index could name them either
