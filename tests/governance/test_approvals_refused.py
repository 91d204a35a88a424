"""A refused decision (another tenant's approver, a forged, malformed or expired signature, a role
the rule does not name, a second decision of one approver) is audited as ``approval.refused``
with the approver, the request and the reason, never the signature, and counts as no decision;
the tenant's audit chain still verifies (``tether audit verify``). Before, a refused attempt
left no trace in the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import run_cli
from tests.governance.approvals_app import SENT, build
from tether import RunStatus, Runtime
from tether.core.errors import ApprovalSignatureError, ApprovalStateError
from tether.governance import ApprovalRule, Approvals, StoreAuditLog
from tether.governance.approvals import ApprovalTenantError, generate_key, sign
from tether.governance.approvals_refused import without_signature
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock

ONE = ApprovalRule(roles=("finance",))


@pytest.fixture(autouse=True)
def _clear() -> None:
    SENT.clear()


async def refused_records(store: Any) -> list[dict[str, Any]]:
    page = await StoreAuditLog(store).records(tenant="acme", limit=1000)
    return [r.data for r in page.records if r.kind == "approval.refused"]


async def test_refused_decisions_are_audited_without_the_signature(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "runs.db"
    store = SqliteStore(path, clock=clock)
    wf = build(ONE, StoreAuditLog(store), name="refunds_refused")
    alice, mallory, bob, forger = (generate_key() for _ in range(4))
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        await ap.register_approver("alice", "finance", alice, tenant="acme")
        await ap.register_approver("bob", "support", bob, tenant="acme")
        await ap.register_approver("mallory", "finance", mallory, tenant="globex")
        res = await rt.run(wf, {"amount": 40}, tenant="acme")
        assert res.status is RunStatus.ESCALATED and res.escalation is not None
        aid = res.escalation["details"]["approval_id"]
        rec = await ap.get(aid)
        now = clock.now()
        expired = sign(alice, rec, expires_at=now - 1)
        tries = [
            ("mallory", sign(mallory, rec, now=now), ApprovalTenantError),  # another tenant
            ("alice", sign(forger, rec, now=now), ApprovalSignatureError),  # forged
            ("alice", expired, ApprovalSignatureError),  # expired
            ("alice", "ed25519:123:not-base64!!", ApprovalSignatureError),  # malformed
            ("bob", sign(bob, rec, now=now), ApprovalSignatureError),  # a role not named
        ]
        for who, signature, error in tries:
            with pytest.raises(error):
                await ap.approve(aid, who, signature)
        after = await ap.get(aid)  # none of it counts as a decision
        assert (after.status, after.decisions, after.version) == ("pending", [], rec.version)
        assert (await rt.get_run(res.run_id)).status is RunStatus.ESCALATED and SENT == []
        done = await ap.approve(aid, "alice", sign(alice, rec, now=now))
        assert done.status == "approved"
        with pytest.raises(ApprovalStateError):  # decided already: refused, audited
            await ap.reject(aid, "alice", sign(alice, rec, "reject", now=now), "changed my mind")
        assert (await rt.wait(res.run_id, timeout=60)).status is RunStatus.COMPLETED
        refused = await refused_records(store)
        page = await StoreAuditLog(store).records(tenant="acme", limit=1000)
        kinds = [r.kind for r in page.records]
    assert SENT == [40]
    assert [(r["approver"], r["decision"], r["error"]) for r in refused] == [
        ("mallory", "approve", "ApprovalTenantError"),
        ("alice", "approve", "ApprovalSignatureError"),
        ("alice", "approve", "ApprovalSignatureError"),
        ("alice", "approve", "ApprovalSignatureError"),
        ("bob", "approve", "ApprovalSignatureError"),
        ("alice", "reject", "ApprovalStateError"),
    ]
    assert all(r["approval_id"] == aid for r in refused)
    assert "not registered for tenant 'acme'" in refused[0]["reason"]
    assert "does not verify" in refused[1]["reason"] and "expired" in refused[2]["reason"]
    assert "malformed signature" in refused[3]["reason"] and "needs" in refused[4]["reason"]
    assert refused[5]["status"] == "approved" and "approved already" in refused[5]["reason"]
    text = str(refused)
    for _, signature, _ in tries:
        assert signature not in text
        for piece in signature.split(":")[1:]:
            if len(piece) >= 16:  # a short one ("123") may be part of an id or a time by chance
                assert piece not in text
    assert kinds.count("approval.approve") == 1 and "approval.reject" not in kinds
    verified = run_cli("audit", "verify", store=f"sqlite:///{path}")
    assert verified.rc == 0, verified.out + verified.err
    assert "ok      acme:" in verified.out


def test_the_signature_is_cut_out_of_any_message() -> None:
    token = "ed25519:1700000000.0:c2lnbmF0dXJl"
    said = f"bad token {token!r}; its expiry '1700000000.0' and body c2lnbmF0dXJl"
    cleaned = without_signature(said, token)
    assert "c2lnbmF0dXJl" not in cleaned and "1700000000.0" not in cleaned
    assert without_signature("x" * 5000, token) == "x" * 1000
    assert without_signature("ed25519 keys only", token) == "ed25519 keys only"
