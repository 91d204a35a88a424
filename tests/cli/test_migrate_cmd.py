"""``tether migrate``: applies the versions a store lacks (SQLite, PostgreSQL), ``--dry-run``
lists them without touching the store, a newer schema and a memory store are refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.cli.conftest import run_cli
from tests.graph.conftest import PG_DSN, pg_schema
from tether.store.schema import LATEST_VERSION, describe, versions


def test_dry_run_of_a_missing_file_creates_nothing_then_migrate_creates_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "new.db"
    url = f"sqlite:///{db}"
    plan = run_cli("migrate", "--dry-run", "--json", store=url).json()
    assert (plan["from"], plan["dry_run"]) == (0, True)
    assert [v["version"] for v in plan["versions"]] == versions()
    assert plan["versions"][0]["adds"].startswith("Runs, checkpoints")
    assert not db.exists()
    res = run_cli("migrate", store=url)
    assert res.rc == 0, res.err
    assert f"migrated v0 → v{LATEST_VERSION}" in res.out
    res = run_cli("migrate", store=url)
    assert res.rc == 0 and f"up to date schema v{LATEST_VERSION}" in res.out


def test_an_older_store_gets_only_what_it_lacks(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    url = f"sqlite:///{db}"
    assert run_cli("migrate", store=url).rc == 0
    with sqlite3.connect(db) as conn:  # as a tether one version older left it
        conn.execute("DELETE FROM tether_schema_version WHERE version = ?", (LATEST_VERSION,))
        # v24 replaces PostgreSQL's limited claim function: nothing of it on SQLite to undo
    plan = run_cli("migrate", "--dry-run", store=url)
    assert plan.rc == 0, plan.err
    assert f"would migrate v{LATEST_VERSION - 1} → v{LATEST_VERSION}" in plan.out
    assert describe(LATEST_VERSION)[:40] in " ".join(plan.out.split())
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT max(version) FROM tether_schema_version").fetchone() == (
            LATEST_VERSION - 1,
        )
    done = run_cli("migrate", "--json", store=url).json()
    assert (done["from"], done["to"]) == (LATEST_VERSION - 1, LATEST_VERSION)
    assert [v["version"] for v in done["versions"]] == [LATEST_VERSION]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT max(version) FROM tether_schema_version").fetchone() == (
            LATEST_VERSION,
        )


def test_a_newer_schema_and_a_memory_store_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    url = f"sqlite:///{db}"
    assert run_cli("migrate", store=url).rc == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO tether_schema_version VALUES (?, 0)", (LATEST_VERSION + 5,))
    for args in (["migrate", "--dry-run"], ["migrate"]):
        res = run_cli(*args, store=url)
        assert res.rc == 2 and "newer than this tether understands" in res.err
    res = run_cli("migrate", store="memory://")
    assert res.rc == 2 and "no schema to migrate" in res.err


def test_migrate_a_postgres_schema() -> None:
    with pg_schema("tether_migrate") as schema:
        url = f"{PG_DSN}?schema={schema}"
        plan = run_cli("migrate", "--dry-run", "--json", store=url).json()
        assert plan["from"] == 0 and len(plan["versions"]) == len(versions())
        res = run_cli("migrate", store=url)
        assert res.rc == 0 and f"migrated v0 → v{LATEST_VERSION}" in res.out, res.err
        assert run_cli("migrate", "--dry-run", "--json", store=url).json()["versions"] == []
