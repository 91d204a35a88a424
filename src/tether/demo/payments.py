"""The demo's payment provider: a refund API that deduplicates by idempotency key and answers
with the ambiguous status real providers send ("accepted", settlement pending).

Its ledger is a SQLite file next to the demo's run store, so it outlives a SIGKILLed demo: what
the provider paid is what the ledger says, whatever the agent believed.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refunds (
    idempotency_key TEXT PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    order_id INTEGER NOT NULL,
    charge_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Refund:
    reference: str
    order_id: int
    charge_id: str
    amount_cents: int
    requests: int
    """How many refund requests the provider received for it (retries included)."""
    settled: bool


class PaymentProvider:
    """One ledger file; every call opens its own short connection (tools run in threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def refund(
        self, order_id: int, charge_id: str, amount_cents: int, idempotency_key: str
    ) -> dict[str, Any]:
        """Refund a charge once per idempotency key; a repeated key counts the request and
        returns the same answer. The answer never says whether the money moved yet."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT reference, order_id, charge_id, amount_cents FROM refunds "
                "WHERE idempotency_key = ?",
                (idempotency_key,),
            ).fetchone()
            if row is None:
                reference = f"rf_{order_id}_{charge_id[-4:]}"
                db.execute(
                    "INSERT INTO refunds VALUES (?, ?, ?, ?, ?, 1, 0, ?)",
                    (idempotency_key, reference, order_id, charge_id, amount_cents, time.time()),
                )
            else:
                reference = row[0]
                if (row[1], row[2], row[3]) != (order_id, charge_id, amount_cents):
                    db.execute("ROLLBACK")
                    return {"status": "rejected", "error": "idempotency key reused"}
                db.execute(
                    "UPDATE refunds SET requests = requests + 1 WHERE idempotency_key = ?",
                    (idempotency_key,),
                )
            db.execute("COMMIT")
        return {"status": "accepted", "reference": reference, "settled": None}

    def status(self, reference: str) -> dict[str, Any]:
        with self._db() as db:
            row = db.execute(
                "SELECT settled FROM refunds WHERE reference = ?", (reference,)
            ).fetchone()
        if row is None:
            return {"reference": reference, "state": "unknown"}
        return {"reference": reference, "state": "settled" if row[0] else "pending"}

    def reset(self) -> None:
        """A new demo: an empty ledger (the runs of earlier demos stay in the run store)."""
        with self._db() as db:
            db.execute("DELETE FROM refunds")

    def settle(self) -> int:
        """The provider's settlement batch: every pending refund is paid out."""
        with self._db() as db:
            return db.execute("UPDATE refunds SET settled = 1 WHERE settled = 0").rowcount

    def refunds(self, order_id: int | None = None) -> list[Refund]:
        sql = "SELECT reference, order_id, charge_id, amount_cents, requests, settled FROM refunds"
        args: tuple[Any, ...] = ()
        if order_id is not None:
            sql, args = sql + " WHERE order_id = ?", (order_id,)
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY created_at", args).fetchall()
        return [Refund(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]
