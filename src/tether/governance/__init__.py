"""Governance: budgets across child runs, loop guards, policies, signed approvals, PII vault,
injection guard, signed agent messages and a hash-chained audit log, as parts wrapped around
the model and tool calls of a run (``compile(governance=Governance(...))``).

The planes below (``tether.llm``, ``tether.tools``, ``tether.graph``) know only the protocol
in ``tether.core.governor``; everything governance does lives here.
"""

from tether.core.errors import MessageSignatureError, PiiKeyError
from tether.governance.approvals import (
    ApprovalRecord,
    ApprovalRule,
    Approvals,
    Approver,
    Escalate,
    granted,
    request_approval,
)
from tether.governance.audit import AuditPage, StoreAuditLog
from tether.governance.audit_verify import AuditBreak, AuditVerification, verify_all, verify_audit
from tether.governance.budget import Budget
from tether.governance.config import Governance
from tether.governance.guard_model import GuardModel
from tether.governance.guards import NoProgressGuard, SemanticLoopGuard, StutterGuard
from tether.governance.message_guard import receive_message, verify_input
from tether.governance.messages import SignedMessage, sign_message, verify_message
from tether.governance.pii_crypto import PiiKey
from tether.governance.pii_detect import PiiDetector
from tether.governance.pii_guard import PiiGuard
from tether.governance.pii_vault import PiiVault
from tether.governance.plan import OPEN, PlannedCall, Template, commit_plan
from tether.governance.policy import PolicySet
from tether.governance.policy_facts import confidence_of, model_confidence
from tether.governance.policy_rules import Decision, Facts, Rule
from tether.governance.provenance import InjectionGuard, trusted, untrusted
from tether.governance.provenance_index import Derivation
from tether.governance.quota import Quota
from tether.governance.scope import AuditSink, GovernancePart, RunGovernor, RunScope
from tether.governance.signing import AgentKey
from tether.store.audit import AuditRow

__all__ = [
    "OPEN",
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
