"""``AuditStore`` in dicts (mixed into ``MemoryStore``): audit chains and message nonces."""

from __future__ import annotations

from tether.store.audit import AuditRow
from tether.store.paging import whole


class MemoryAudit:
    _audit_chains: dict[str, dict[int, AuditRow]]
    _nonce_rows: dict[str, str]

    def _chains(self) -> dict[str, dict[int, AuditRow]]:
        try:
            return self._audit_chains
        except AttributeError:
            self._audit_chains = {}
            return self._audit_chains

    def _nonces(self) -> dict[str, str]:
        try:
            return self._nonce_rows
        except AttributeError:
            self._nonce_rows = {}
            return self._nonce_rows

    async def append_audit(self, row: AuditRow) -> bool:
        chain = self._chains().setdefault(row.tenant, {})
        if row.seq in chain:
            return False
        chain[row.seq] = row
        return True

    async def audit_head(self, tenant: str) -> AuditRow | None:
        chain = self._chains().get(tenant)
        return chain[max(chain)] if chain else None

    async def list_audit(
        self,
        tenant: str | None = None,
        *,
        run_id: str | None = None,
        since: float | None = None,
        after: tuple[str, int] | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        limit = whole("limit", limit)
        out: list[AuditRow] = []
        chains = self._chains()
        for name in sorted(chains):
            if tenant is not None and name != tenant:
                continue
            for seq in sorted(chains[name]):
                r = chains[name][seq]
                if len(out) >= limit:
                    return out
                if (
                    (run_id is None or r.run_id == run_id)
                    and (since is None or r.ts >= since)
                    and (after is None or (r.tenant, r.seq) > after)
                ):
                    out.append(r)
        return out

    async def audit_tenants(self) -> list[str]:
        return sorted(t for t, chain in self._chains().items() if chain)

    async def claim_message_nonce(self, nonce: str, consumer: str, sender: str, at: float) -> str:
        return self._nonces().setdefault(nonce, consumer)
