"""The audit log's rows and the store side of it (``tether.governance.audit`` computes the hash
chain; the store only keeps rows and refuses a second row at a taken position).

A row sits at ``(tenant, seq)`` in its tenant's chain; ``append_audit`` inserts it only while
that position is free, so two writers that both computed record ``n`` cannot fork the chain:
one insert wins, the other sees ``False``, re-reads the head and tries ``n + 1``. The
``message_nonces`` rows remember which run consumed each signed agent message's nonce, so a
message replayed into another run is refused while the same run re-verifying it (a node re-run
after a crash) is not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

NO_TENANT = ""
"""The chain of runs without a tenant."""


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One record of a tenant's audit chain, as stored."""

    tenant: str
    seq: int
    """Position in the tenant's chain, from 1, without gaps."""
    ts: float
    run_id: str | None
    kind: str
    data_json: str
    """The record's data as canonical JSON (what the hash covers)."""
    prev_hash: str
    """The hash of record ``seq - 1`` (64 zeros for the first)."""
    hash: str

    @property
    def data(self) -> Any:
        """The record's data, parsed."""
        return json.loads(self.data_json)


@runtime_checkable
class AuditStore(Protocol):
    async def append_audit(self, row: AuditRow) -> bool:
        """Insert ``row`` unless its ``(tenant, seq)`` is taken. Returns whether it was."""
        ...

    async def audit_head(self, tenant: str) -> AuditRow | None:
        """The tenant's record with the highest ``seq`` (None: an empty chain)."""
        ...

    async def list_audit(
        self,
        tenant: str | None = None,
        *,
        run_id: str | None = None,
        since: float | None = None,
        after: tuple[str, int] | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        """Rows ordered by ``(tenant, seq)``: of one tenant (None: every tenant), of one run,
        written at or after ``since``, past the cursor ``after`` (the last row's ``(tenant,
        seq)`` of the previous page); at most ``limit``."""
        ...

    async def audit_tenants(self) -> list[str]:
        """Every tenant with a chain, sorted."""
        ...

    async def claim_message_nonce(self, nonce: str, consumer: str, sender: str, at: float) -> str:
        """Record that ``consumer`` accepted the message carrying ``nonce`` unless another
        consumer did first. Returns the consumer holding the nonce (``consumer`` when it is
        new or was already this consumer's)."""
        ...
