"""A PostgreSQL backlog for plan tests: ``n`` copies of one run, straight in SQL."""

from __future__ import annotations

import psycopg


def copy_run(conn: psycopg.Connection, schema: str, n: int) -> None:
    """Insert ``n`` copies of the only run in ``schema``'s runs table (ids ``r1``..``rn``,
    each a second younger than the one before), then gather the table's statistics as
    autovacuum would."""
    table = f'"{schema}".tether_runs'
    names = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'tether_runs' ORDER BY ordinal_position",
            (schema,),
        )
    ]
    copied = ", ".join(
        {"run_id": "'r' || g", "created_at": "created_at + g"}.get(c, c) for c in names
    )
    conn.execute(
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {copied} FROM {table}, "
        "generate_series(1, %s) AS g",
        (n,),
    )
    conn.execute(f"ANALYZE {table}")
