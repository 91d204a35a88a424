"""The fake production the triage assistant works against, all local files under one directory.

* ``host/``: what the diagnostics read (a service log per service, ``df`` output, the service
  manager's status file). The diagnostics get *copies* of these files in their sandbox.
* ``services.db``: the service manager's ledger of restarts, keyed by idempotency key, so it
  outlives a crashed or paused assistant: what was restarted is what the ledger says.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALERT: dict[str, Any] = {
    "id": "INC-1042",
    "service": "checkout",
    "host": "web-3",
    "severity": "high",
    "summary": "checkout p99 latency 4.2 s and HTTP 5xx rate 12 % for 10 minutes",
}

_CHECKOUT_LOG = """\
2026-12-03T09:58:01Z INFO  checkout request POST /cart/checkout 182 ms
2026-12-03T09:58:12Z WARN  checkout slow query orders.by_customer 940 ms
2026-12-03T10:01:40Z INFO  checkout request POST /cart/checkout 211 ms
2026-12-03T10:02:05Z WARN  checkout db pool 46/50 connections in use
2026-12-03T10:03:17Z ERROR checkout connection pool exhausted (50/50 in use), waited 3000 ms
2026-12-03T10:03:18Z ERROR checkout request POST /cart/checkout failed: 503 pool timeout
2026-12-03T10:04:02Z WARN  checkout heap 3.7 GiB of 4.0 GiB, gc pause 820 ms
2026-12-03T10:04:30Z ERROR checkout connection pool exhausted (50/50 in use), waited 3000 ms
2026-12-03T10:05:11Z ERROR checkout request POST /cart/checkout failed: 503 pool timeout
2026-12-03T10:06:45Z ERROR checkout connection pool exhausted (50/50 in use), waited 3000 ms
2026-12-03T10:07:02Z INFO  checkout leaked connection returned by reaper after 600 s
2026-12-03T10:07:59Z ERROR checkout connection pool exhausted (50/50 in use), waited 3000 ms
"""

_PAYMENTS_LOG = """\
2026-12-03T10:02:00Z INFO  payments capture ch_88 ok 120 ms
2026-12-03T10:05:00Z INFO  payments capture ch_89 ok 131 ms
"""

_DF = """\
Filesystem      Size  Used Avail Use% Mounted on
/dev/nvme0n1p1   80G   33G   47G  41% /
/dev/nvme1n1    200G   61G  139G  31% /var
tmpfs           7.8G  1.2M  7.8G   1% /run
"""

_SERVICES: dict[str, dict[str, Any]] = {
    "checkout": {
        "state": "degraded",
        "uptime_hours": 311,
        "memory_mb": 3790,
        "memory_limit_mb": 4096,
        "db_pool_in_use": "50/50",
        "restarts_24h": 0,
    },
    "payments": {
        "state": "healthy",
        "uptime_hours": 72,
        "memory_mb": 610,
        "memory_limit_mb": 2048,
        "db_pool_in_use": "4/20",
        "restarts_24h": 0,
    },
}

RUNBOOKS: list[dict[str, str]] = [
    {
        "runbook": "RB-7",
        "title": "Checkout latency or 5xx spike",
        "text": (
            "Runbook RB-7, checkout latency or HTTP 5xx spike: search the service log for "
            "'pool exhausted' and timeouts, read the service status (memory, db pool, uptime) "
            "and check disk usage on the host. When the database connection pool is exhausted "
            "and memory is near its limit after a long uptime, leaked connections are the "
            "cause: restart the service (restart_service). A restart needs the on-call lead's "
            "approval."
        ),
        "checks": "search_log,service_status,disk_usage",
        "remediation": "restart_service",
    },
    {
        "runbook": "RB-3",
        "title": "Disk almost full",
        "text": (
            "Runbook RB-3, disk almost full: check disk usage; above 90 % on /var, find the "
            "largest logs and rotate them. Never delete data files. No automatic remediation."
        ),
        "checks": "disk_usage,search_log",
        "remediation": "none",
    },
    {
        "runbook": "RB-12",
        "title": "TLS certificate expiring",
        "text": (
            "Runbook RB-12, TLS certificate expiring: read the service log for handshake "
            "errors and page the security team to renew the certificate."
        ),
        "checks": "search_log",
        "remediation": "none",
    },
]

_LEDGER = """
CREATE TABLE IF NOT EXISTS restarts (
    idempotency_key TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    incident TEXT NOT NULL,
    requests INTEGER NOT NULL,
    restarted_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Restart:
    service: str
    incident: str
    requests: int
    """How many restart requests the manager received for it (retries included)."""


class Host:
    """The fake host: its files, and a service manager that restarts once per key."""

    def __init__(self, directory: Path) -> None:
        self.root = directory / "host"
        self.ledger = directory / "services.db"
        if not (self.root / "services.json").exists():
            self.reset()
        with self._db() as db:
            db.execute(_LEDGER)

    def reset(self) -> None:
        """A new incident: the degraded service and an empty restart ledger."""
        (self.root / "log").mkdir(parents=True, exist_ok=True)
        (self.root / "log" / "checkout.log").write_text(_CHECKOUT_LOG)
        (self.root / "log" / "payments.log").write_text(_PAYMENTS_LOG)
        (self.root / "df.txt").write_text(_DF)
        (self.root / "services.json").write_text(json.dumps(_SERVICES, indent=2))
        if self.ledger.exists():
            with self._db() as db:
                db.execute(_LEDGER)
                db.execute("DELETE FROM restarts")

    def files(self) -> dict[str, bytes]:
        """Copies of the host's files, as the sandbox gets them (path -> content)."""
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.ledger, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def restart(self, service: str, incident: str, idempotency_key: str) -> dict[str, Any]:
        """Restart ``service`` once per idempotency key; a repeated key only counts."""
        status = json.loads((self.root / "services.json").read_text())
        if service not in status:
            raise ValueError(f"no service {service!r} on this host; known: {sorted(status)}")
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT requests FROM restarts WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO restarts VALUES (?, ?, ?, 1, ?)",
                    (idempotency_key, service, incident, time.time()),
                )
                fresh = {"state": "healthy", "uptime_hours": 0, "memory_mb": 420}
                status[service].update(fresh, db_pool_in_use="3/50", restarts_24h=1)
                (self.root / "services.json").write_text(json.dumps(status, indent=2))
            else:
                db.execute(
                    "UPDATE restarts SET requests = requests + 1 WHERE idempotency_key = ?",
                    (idempotency_key,),
                )
            db.execute("COMMIT")
        return {"service": service, "restarted": row is None, "key": idempotency_key}

    def restarts(self) -> list[Restart]:
        with self._db() as db:
            rows = db.execute(
                "SELECT service, incident, requests FROM restarts ORDER BY restarted_at"
            ).fetchall()
        return [Restart(r[0], r[1], r[2]) for r in rows]
