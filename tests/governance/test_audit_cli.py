"""``tether audit verify`` and ``tether audit list`` against a real SQLite store, in a
subprocess: exit 0 on intact chains, 1 naming the first broken record."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from tether.governance import StoreAuditLog
from tether.store.sqlite import SqliteStore

from ..cli.conftest import run_cli

T0 = 1_700_000_000.0


async def fill(path: Path) -> None:
    store = SqliteStore(path)
    await store.setup()
    log = StoreAuditLog(store)
    for i in range(1, 6):
        await log.append("policy_decision", {"i": i}, tenant="acme", run_id="r1", ts=T0 + i)
    await log.append("trip", {"guard": "stutter"}, run_id="r2", ts=T0)
    await store.close()


def test_verify_and_list(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    url = f"sqlite:///{path}"
    asyncio.run(fill(path))

    ok = run_cli("audit", "verify", store=url)
    assert ok.rc == 0, ok.err
    assert "ok      (no tenant): 1 records" in ok.out
    assert "ok      acme: 5 records, head 5" in ok.out

    listed = run_cli("audit", "list", "--tenant", "acme", "--json", "--limit", "3", store=url)
    assert listed.rc == 0, listed.err
    rows = json.loads(listed.out)
    assert [(r["seq"], r["kind"], r["data"]) for r in rows] == [
        (1, "policy_decision", {"i": 1}),
        (2, "policy_decision", {"i": 2}),
        (3, "policy_decision", {"i": 3}),
    ]
    table = run_cli("audit", "list", "--run", "r2", store=url)
    assert table.rc == 0 and "trip" in table.out and "stutter" in table.out

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tether_audit_log SET data = '{\"i\":30}' WHERE seq = 3")
    broken = run_cli("audit", "verify", "--tenant", "acme", store=url)
    assert broken.rc == 1
    assert "BROKEN  acme: audit record 3 of tenant 'acme'" in broken.out
    as_json = run_cli("audit", "verify", "--json", store=url)
    assert as_json.rc == 1
    report = json.loads(as_json.out)
    assert report["ok"] is False
    by_tenant = {c["tenant"]: c for c in report["chains"]}
    assert by_tenant[""]["ok"] is True
    assert by_tenant["acme"]["broken"]["seq"] == 3
    assert by_tenant["acme"]["broken"]["reason"] == "hash_mismatch"


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    asyncio.run(fill(path))
    res = run_cli("audit", "list", "--since", "yesterday", store=f"sqlite:///{path}")
    assert res.rc == 2 and "a duration ago (30m, 24h, 7d)" in res.err
    missing = run_cli("audit", "verify", store=f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.rc == 2 and "no tether store" in missing.err


def test_rows_edited_into_what_no_record_holds_are_named_not_a_crash(tmp_path: Path) -> None:
    """SQLite's loose typing lets a hand edit put text where a number goes: verify names the
    record (exit 1) and list still shows the rows, where both failed with a ValueError."""
    path = tmp_path / "audit.db"
    url = f"sqlite:///{path}"
    edits = {
        "SET ts = 'garbage' WHERE seq = 3": "audit record 3 of tenant 'acme' ('policy_decision')"
        " was changed",
        "SET seq = 2.5 WHERE seq = 3": "audit record 3 of tenant 'acme' is out of place",
        "SET seq = 'x' WHERE seq = 3": "audit record 3 of tenant 'acme' is missing",
        "SET data = 'not json' WHERE seq = 3": "audit record 3 of tenant 'acme' ('policy_decision')"
        " was changed",
    }
    for edit, named in edits.items():
        path.unlink(missing_ok=True)
        asyncio.run(fill(path))
        with sqlite3.connect(path) as conn:
            conn.execute(f"UPDATE tether_audit_log {edit}")
        broken = run_cli("audit", "verify", "--tenant", "acme", store=url)
        assert broken.rc == 1 and named in broken.out, (edit, broken.out, broken.err)
        for fmt in ((), ("--json",)):
            listed = run_cli("audit", "list", "--tenant", "acme", *fmt, store=url)
            assert listed.rc == 0 and "policy_decision" in listed.out, (edit, listed.err)
    bad_since = run_cli("audit", "list", "--since", "nan", store=url)
    assert bad_since.rc == 2 and "finite Unix seconds" in bad_since.err
