"""The fake cloud the FinOps agent works against: daily costs per service (with a spike), the
resources behind them with their utilisation, and a ledger of the actions taken on them.

It lives in one SQLite file, so every process of the example (a pause, an approval, a
simulated escalation) sees the same cloud. Stopping a resource is deduplicated by its
idempotency key: a repeated request is counted, never executed twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

ACCOUNT = "acme-prod"
DAYS = [f"2026-11-{d:02d}" for d in range(19, 31)] + ["2026-12-01", "2026-12-02"]
"""Fourteen days of billing; the last one has the spike."""
BASELINE_USD = {"compute": 412.0, "database": 181.0, "storage": 96.0, "network": 58.0}
WOBBLE = [0.0, 3.1, -2.4, 1.2, -0.8, 2.6, -1.9, 0.7, 1.5, -2.2, 0.4, 2.0, -1.1, 1.7]
"""Day-to-day noise of the steady services (dollars)."""
SPIKE_THRESHOLD = 1.3
"""A day above this multiple of the previous week's average is a spike."""

RESOURCES: list[dict[str, Any]] = [
    {
        "resource_id": "gpu-train-7",
        "service": "gpu-training",
        "kind": "8x A100 training cluster",
        "team": "ml-platform",
        "owner": "priya",
        "hourly_usd": 49.0,
        "utilisation_24h": 0.01,
        "launched": "2026-12-01T09:12Z",
        "note": "training job llm-ft-118 finished 2026-12-01T23:41Z; nothing scheduled since",
    },
    {
        "resource_id": "gpu-dev-1",
        "service": "gpu-training",
        "kind": "1x T4 notebook",
        "team": "ml-platform",
        "owner": "priya",
        "hourly_usd": 1.2,
        "utilisation_24h": 0.34,
        "launched": "2026-10-02T08:00Z",
        "note": "shared notebook server",
    },
    {
        "resource_id": "gpu-infer-2",
        "service": "gpu-training",
        "kind": "1x L4 evaluation server",
        "team": "ml-platform",
        "owner": "priya",
        "hourly_usd": 0.475,
        "utilisation_24h": 0.71,
        "launched": "2026-09-14T10:30Z",
        "note": "nightly evaluation jobs",
    },
    {
        "resource_id": "web-asg-1",
        "service": "compute",
        "kind": "autoscaling group, 12 vCPU nodes",
        "team": "storefront",
        "owner": "lee",
        "hourly_usd": 17.2,
        "utilisation_24h": 0.58,
        "launched": "2026-06-01T00:00Z",
        "note": "storefront web tier",
    },
    {
        "resource_id": "pg-main",
        "service": "database",
        "kind": "managed PostgreSQL, 16 vCPU",
        "team": "storefront",
        "owner": "lee",
        "hourly_usd": 7.5,
        "utilisation_24h": 0.46,
        "launched": "2025-03-11T00:00Z",
        "note": "primary database",
    },
]
GPU_BASELINE_USD = 24 * sum(
    r["hourly_usd"]
    for r in RESOURCES
    if r["service"] == "gpu-training" and r["resource_id"] != "gpu-train-7"
)


def daily_costs() -> dict[str, list[float]]:
    """Service -> its cost on each of ``DAYS``: steady, but for the idle cluster's last day."""
    costs = {
        svc: [round(base + WOBBLE[i], 2) for i in range(len(DAYS))]
        for svc, base in BASELINE_USD.items()
    }
    gpu = [round(GPU_BASELINE_USD + WOBBLE[-1 - i] / 4, 2) for i in range(len(DAYS))]
    gpu[-2] += round(49.0 * 14.8, 2)  # launched 09:12 on the day before
    gpu[-1] += 49.0 * 24  # and left running, idle, all of the last day
    costs["gpu-training"] = [round(c, 2) for c in gpu]
    return costs


def spike_event() -> dict[str, Any] | None:
    """The billing alert for the last day, when its total is a spike against the week before."""
    totals = [sum(col) for col in zip(*daily_costs().values(), strict=True)]
    baseline = mean(totals[-9:-2])
    if totals[-1] < baseline * SPIKE_THRESHOLD:
        return None
    return {
        "event_id": f"cost-spike:{ACCOUNT}:{DAYS[-1]}",
        "account": ACCOUNT,
        "day": DAYS[-1],
        "total_usd": round(totals[-1], 2),
        "baseline_usd": round(baseline, 2),
    }


@dataclass(frozen=True)
class Action:
    """One action in the cloud's ledger: executed once, ``requests`` times asked for."""

    key: str
    resource_id: str
    action: str
    requests: int
    at: float


class Cloud:
    """The cloud's mutable part (resource states, the action ledger) in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS resources (resource_id TEXT PRIMARY KEY, state TEXT)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS actions (key TEXT PRIMARY KEY, resource_id TEXT, "
                "action TEXT, requests INTEGER, at REAL)"
            )
            db.executemany(
                "INSERT OR IGNORE INTO resources VALUES (?, 'running')",
                [(r["resource_id"],) for r in RESOURCES],
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level="IMMEDIATE")
        try:
            with db:
                yield db
        finally:
            db.close()

    def resources(self, service: str | None = None) -> list[dict[str, Any]]:
        with self._db() as db:
            states = dict(db.execute("SELECT resource_id, state FROM resources").fetchall())
        return [
            {**r, "state": states.get(r["resource_id"], "running")}
            for r in RESOURCES
            if service is None or r["service"] == service
        ]

    def stop(self, resource_id: str, key: str, at: float) -> dict[str, Any]:
        """Stop a resource, once per idempotency ``key``; a repeat is counted and answered
        with the first request's result."""
        found = next((r for r in RESOURCES if r["resource_id"] == resource_id), None)
        if found is None:
            raise ValueError(f"no resource {resource_id!r}; list_resources names them")
        with self._db() as db:
            seen = db.execute("SELECT requests FROM actions WHERE key = ?", (key,)).fetchone()
            if seen is None:
                db.execute(
                    "INSERT INTO actions VALUES (?, ?, 'stop', 1, ?)", (key, resource_id, at)
                )
                db.execute(
                    "UPDATE resources SET state = 'stopped' WHERE resource_id = ?", (resource_id,)
                )
            else:
                db.execute("UPDATE actions SET requests = requests + 1 WHERE key = ?", (key,))
        return {
            "resource_id": resource_id,
            "state": "stopped",
            "saved_usd_per_day": round(found["hourly_usd"] * 24, 2),
            "idempotency_key": key,
        }

    def actions(self) -> list[Action]:
        with self._db() as db:
            rows = db.execute("SELECT key, resource_id, action, requests, at FROM actions")
            return [Action(*row) for row in rows.fetchall()]
