"""Checking an audit chain (``tether audit verify``): the first broken record, named.

Records are read in ``seq`` order, page by page. Record ``n`` is broken when:

- ``missing``: the chain jumps from ``n - 1`` past ``n`` (a record was deleted);
- ``hash_mismatch``: its hash is not the hash of its contents and position (its data, kind,
  run, time or ``seq`` were changed: tampered, or moved to another position), or the record
  found after ``n - 1`` has a position at or before it (or one that is no whole number);
- ``prev_hash_mismatch``: it does not name record ``n - 1``'s hash (the record before it was
  replaced, together with its hash, or the records were reordered);
- ``anchor_mismatch``: (with ``anchor=(seq, hash)``, a head noted earlier, e.g. exported to
  another system) the anchored record is gone or differs: the tail was cut or rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.governance.audit import GENESIS, audit_store, row_hash
from tether.store.audit import NO_TENANT, AuditRow

PAGE = 1000


@dataclass(frozen=True, slots=True)
class AuditBreak:
    seq: int
    """The first broken record's position."""
    reason: str
    """``missing``, ``hash_mismatch``, ``prev_hash_mismatch`` or ``anchor_mismatch``."""
    message: str
    record: AuditRow | None
    """The record found at ``seq`` (None: it is missing)."""


@dataclass(frozen=True, slots=True)
class AuditVerification:
    tenant: str
    records: int
    """Records checked before the first break (all of them when ``ok``)."""
    head_seq: int
    """The last intact record's ``seq`` (0: none); note it with ``head_hash`` as an anchor."""
    head_hash: str
    broken: AuditBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _who(tenant: str) -> str:
    return "runs without a tenant" if tenant == NO_TENANT else f"tenant {tenant!r}"


def _check(row: AuditRow, expected: int, prev: str, tenant: str) -> AuditBreak | None:
    where = f"audit record {expected} of {_who(tenant)}"
    if row.seq < expected:  # a position taken twice, or no whole number: it was moved
        return AuditBreak(
            expected,
            "hash_mismatch",
            f"{where} is out of place: the record after {expected - 1} ({row.kind!r}) has "
            f"position {row.seq if row.seq >= 0 else 'that is no whole number'} (its position "
            "was changed)",
            row,
        )
    if row.seq != expected:
        return AuditBreak(
            expected,
            "missing",
            f"{where} is missing: the chain jumps from {expected - 1} to {row.seq} "
            "(records were deleted)",
            None,
        )
    if row_hash(row) != row.hash:
        return AuditBreak(
            expected,
            "hash_mismatch",
            f"{where} ({row.kind!r}) was changed after it was written: its hash does not match "
            "its contents and position (tampered with, or moved from another position)",
            row,
        )
    if row.prev_hash != prev:
        return AuditBreak(
            expected,
            "prev_hash_mismatch",
            f"{where} ({row.kind!r}) does not follow record {expected - 1}: the record before "
            "it was replaced or the records were reordered",
            row,
        )
    return None


async def verify_audit(
    store: Any, tenant: str | None = None, *, anchor: tuple[int, str] | None = None
) -> AuditVerification:
    """Check ``tenant``'s chain (None or ``""``: runs without a tenant) from its first record
    to its last; stop at the first broken record."""
    st = audit_store(store)
    chain = NO_TENANT if tenant is None else tenant
    expected, prev, seen, anchored = 1, GENESIS, 0, None
    after: tuple[str, int] | None = None
    while True:
        rows = await st.list_audit(chain, after=after, limit=PAGE)
        for row in rows:
            broken = _check(row, expected, prev, chain)
            if broken is not None:
                return AuditVerification(chain, seen, expected - 1, prev, broken)
            if anchor is not None and row.seq == anchor[0]:
                anchored = row.hash
            expected, prev, seen = expected + 1, row.hash, seen + 1
        if len(rows) < PAGE:
            break
        after = (chain, rows[-1].seq)
    if anchor is not None and anchored != anchor[1]:
        seq = anchor[0]
        what = "is gone" if anchored is None else "differs from the anchor noted"
        broken = AuditBreak(
            seq,
            "anchor_mismatch",
            f"audit record {seq} of {_who(chain)} {what}: the chain's "
            "tail was cut off or rewritten",
            None,
        )
        return AuditVerification(chain, seen, expected - 1, prev, broken)
    return AuditVerification(chain, seen, expected - 1, prev)


async def verify_all(store: Any) -> list[AuditVerification]:
    """``verify_audit`` of every tenant's chain in ``store``."""
    st = audit_store(store)
    return [await verify_audit(st, t) for t in await st.audit_tenants()]
