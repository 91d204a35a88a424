"""``PiiVaultStore`` in dicts (mixed into ``MemoryStore``): the PII vault of one process."""

from __future__ import annotations

from collections.abc import Sequence

from tether.core.errors import InvalidInputError
from tether.store.pii_vault import PiiRow, PiiSecret


class MemoryPiiVault:
    _pii_rows: dict[str, dict[str, PiiRow]]
    """run -> digest -> row"""
    _pii_checks: dict[str, str]

    def _pii(self) -> tuple[dict[str, dict[str, PiiRow]], dict[str, str]]:
        try:
            return self._pii_rows, self._pii_checks
        except AttributeError:
            self._pii_rows, self._pii_checks = {}, {}
            return self._pii_rows, self._pii_checks

    async def pii_key_check(self, run_id: str, check: str) -> str:
        return self._pii()[1].setdefault(run_id, check)

    async def assign_pii(self, run_id: str, secrets: Sequence[PiiSecret]) -> list[int]:
        rows, checks = self._pii()
        if secrets and run_id not in checks:
            raise InvalidInputError(
                f"run {run_id!r} has no PII key check: call pii_key_check(run_id, check) "
                "before assigning values (PiiVault does)"
            )
        vault = rows.setdefault(run_id, {})
        out = []
        for s in secrets:
            row = vault.get(s.digest)
            if row is None:
                n = 1 + max(
                    (r.number for r in vault.values() if r.entity_type == s.entity_type), default=0
                )
                row = vault[s.digest] = PiiRow(s.entity_type, n, s.digest, bytes(s.sealed))
            out.append(row.number)
        return out

    async def get_pii(self, run_id: str, refs: Sequence[tuple[str, int]]) -> list[PiiRow]:
        by_ref = {(r.entity_type, r.number): r for r in self._pii()[0].get(run_id, {}).values()}
        return [by_ref[ref] for ref in dict.fromkeys(refs) if ref in by_ref]

    async def delete_pii(self, run_id: str) -> int:
        rows, checks = self._pii()
        checks.pop(run_id, None)
        return len(rows.pop(run_id, {}))
