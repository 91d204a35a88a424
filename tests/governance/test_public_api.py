"""The public surface of ``tether.governance``: pinned and importable."""

from __future__ import annotations

import tether.governance as governance

EXPECTED = sorted(
    [
        "AgentKey",
        "ApprovalRecord",
        "ApprovalRule",
        "Approvals",
        "Approver",
        "AuditBreak",
        "AuditPage",
        "AuditRow",
        "AuditSink",
        "AuditVerification",
        "Budget",
        "Decision",
        "Derivation",
        "Escalate",
        "Facts",
        "Governance",
        "GovernancePart",
        "GuardModel",
        "InjectionGuard",
        "MessageSignatureError",
        "NoProgressGuard",
        "OPEN",
        "PiiDetector",
        "PiiGuard",
        "PiiKey",
        "PiiKeyError",
        "PiiVault",
        "PlannedCall",
        "PolicySet",
        "Quota",
        "Rule",
        "RunGovernor",
        "RunScope",
        "SemanticLoopGuard",
        "SignedMessage",
        "StoreAuditLog",
        "StutterGuard",
        "Template",
        "commit_plan",
        "confidence_of",
        "granted",
        "model_confidence",
        "receive_message",
        "request_approval",
        "sign_message",
        "trusted",
        "untrusted",
        "verify_all",
        "verify_audit",
        "verify_input",
        "verify_message",
    ]
)


def test_all_is_pinned() -> None:
    assert sorted(governance.__all__) == EXPECTED
    assert len(governance.__all__) == len(set(governance.__all__))


def test_every_name_is_importable() -> None:
    for name in EXPECTED:
        ns: dict[str, object] = {}
        exec(f"from tether.governance import {name}", ns)
        assert ns[name] is getattr(governance, name)


def test_a_governance_part_is_what_compile_takes() -> None:
    from tether.core.governor import GovernanceConfig, Governor

    gov = governance.Governance(budget=governance.Budget(cost=1.0))
    assert isinstance(gov, GovernanceConfig)
    assert "Budget" in repr(gov)
    assert isinstance(
        governance.RunGovernor((), None, None, None, governance.AuditSink()), Governor
    )  # type: ignore[arg-type]


async def test_a_runtime_has_its_approvals() -> None:
    """``rt.approvals``, as the graph plane cannot import governance: an extension registered
    by ``tether.governance`` (``tether.graph.extensions``), built once per runtime."""
    import pytest

    from tether import Runtime
    from tether.graph.extensions import extension
    from tether.store.memory import MemoryStore

    async with Runtime(MemoryStore()) as rt:
        assert isinstance(rt.approvals, governance.Approvals)
        assert rt.approvals is rt.approvals
        assert rt.approvals.runtime is rt
        assert await rt.approvals.list() == []
        with pytest.raises(AttributeError, match="not imported"):
            extension(rt, "dashboard")
