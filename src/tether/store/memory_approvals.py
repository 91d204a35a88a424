"""``ApprovalStore`` in dicts (mixed into ``MemoryStore``)."""

from __future__ import annotations

import dataclasses

from tether.core import serde
from tether.core.clock import Clock
from tether.core.errors import ApprovalNotFoundError
from tether.store.approvals import PENDING, ApprovalRecord, Approver, tenant_key
from tether.store.paging import whole
from tether.store.types import RunRecord


def _copy(rec: ApprovalRecord) -> ApprovalRecord:
    """A deep copy through the serializer: what a caller holds never aliases a row."""
    return ApprovalRecord(**serde.loads(serde.dumps(dataclasses.asdict(rec))))


def _tenant_of(runs: dict[str, RunRecord], run_id: str) -> str | None:
    run = runs.get(run_id)
    return None if run is None else run.tenant


class MemoryApprovals:
    clock: Clock
    _approval_rows: dict[str, ApprovalRecord]
    _approver_rows: dict[tuple[str, str], Approver]
    """By ``(approver_id, tenant_key(tenant))``."""

    def _approvals(self) -> dict[str, ApprovalRecord]:
        try:
            return self._approval_rows
        except AttributeError:
            self._approval_rows = {}
            return self._approval_rows

    def _approvers(self) -> dict[tuple[str, str], Approver]:
        try:
            return self._approver_rows
        except AttributeError:
            self._approver_rows = {}
            return self._approver_rows

    async def create_approval(self, record: ApprovalRecord) -> tuple[ApprovalRecord, bool]:
        rows = self._approvals()
        for row in rows.values():
            if row.intent_hash == record.intent_hash and row.status == PENDING:
                return _copy(row), False
        if record.approval_id in rows:
            return _copy(rows[record.approval_id]), False
        now = self.clock.now()
        row = _copy(record)
        row.status, row.version, row.created_at, row.updated_at = PENDING, 0, now, now
        rows[row.approval_id] = row
        return _copy(row), True

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        row = self._approvals().get(approval_id)
        return None if row is None else _copy(row)

    async def list_approvals(
        self,
        *,
        status: str | None = None,
        run_id: str | None = None,
        intent_hash: str | None = None,
        limit: int = 100,
        tenant: str | None = None,
        before: str | None = None,
    ) -> list[ApprovalRecord]:
        runs: dict[str, RunRecord] = getattr(self, "_runs", {})
        upper: tuple[float, str] | None = None
        if before is not None:  # a cursor this listing could not show is no cursor of it
            cursor = self._approvals().get(before)
            if cursor is None or (tenant is not None and _tenant_of(runs, cursor.run_id) != tenant):
                raise ApprovalNotFoundError(before)
            upper = (cursor.created_at, cursor.approval_id)
        rows = [
            r
            for r in self._approvals().values()
            if (status is None or r.status == status)
            and (run_id is None or r.run_id == run_id)
            and (intent_hash is None or r.intent_hash == intent_hash)
            and (tenant is None or _tenant_of(runs, r.run_id) == tenant)
            and (upper is None or (r.created_at, r.approval_id) < upper)
        ]
        rows.sort(key=lambda r: (r.created_at, r.approval_id), reverse=True)
        return [_copy(r) for r in rows[: max(whole("limit", limit), 0)]]

    async def update_approval(self, record: ApprovalRecord) -> bool:
        rows = self._approvals()
        row = rows.get(record.approval_id)
        if row is None or row.version != record.version:
            return False
        new = _copy(record)
        new.version, new.updated_at = row.version + 1, self.clock.now()
        for fixed in ("run_id", "intent_hash", "intent", "reason", "created_at"):
            setattr(new, fixed, getattr(row, fixed))
        rows[record.approval_id] = new
        return True

    async def put_approver(self, approver: Approver) -> Approver:
        rows, now = self._approvers(), self.clock.now()
        key = (approver.approver_id, tenant_key(approver.tenant))
        old = rows.get(key)
        row = dataclasses.replace(
            approver, created_at=old.created_at if old else now, updated_at=now
        )
        rows[key] = row
        return dataclasses.replace(row)

    async def get_approver(self, approver_id: str, tenant: str | None = None) -> Approver | None:
        row = self._approvers().get((approver_id, tenant_key(tenant)))
        return None if row is None else dataclasses.replace(row)

    async def list_approvers(self, tenant: str | None = None) -> list[Approver]:
        want = None if tenant is None else tenant_key(tenant)
        return [
            dataclasses.replace(a)
            for (_, t), a in sorted(self._approvers().items())
            if want is None or t == want
        ]
