"""Governance: budgets across child runs, loop guards, policies, signed approvals, PII vault,
injection guard, signed agent messages and a hash-chained audit log, as parts wrapped around
the model and tool calls of a run (``compile(governance=Governance(...))``).

The planes below (``tether.llm``, ``tether.tools``, ``tether.graph``) know only the protocol
in ``tether.core.governor``; everything governance does lives here.
"""

from tether.governance.config import Governance
from tether.governance.scope import AuditSink, GovernancePart, RunGovernor, RunScope

__all__ = [
    "AuditSink",
    "Governance",
    "GovernancePart",
    "RunGovernor",
    "RunScope",
]
