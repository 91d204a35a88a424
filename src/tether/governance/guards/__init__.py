"""Loop guards: parts of ``Governance(guards=[...])`` that stop a run going round in circles.

- :class:`StutterGuard`: the same tool with the same arguments more than N times in a run;
- :class:`SemanticLoopGuard`: the run's recent thoughts nearly identical (warn, then trip);
- :class:`NoProgressGuard`: N steps without a change to the state fields that show progress.

A trip parks the run ESCALATED (``kind="loop_guard"``, ``details["guard"]`` names the guard);
``Runtime.resume(run_id, {"raise_limit": {guard: n}})`` continues it (see ``base``).
"""

from tether.governance.guards.base import KIND, LIMITS_KEY, TRIPPED_EVENT, WARNING_EVENT
from tether.governance.guards.progress import NoProgressGuard
from tether.governance.guards.semantic import SemanticLoopGuard
from tether.governance.guards.stutter import StutterGuard

__all__ = [
    "KIND",
    "LIMITS_KEY",
    "TRIPPED_EVENT",
    "WARNING_EVENT",
    "NoProgressGuard",
    "SemanticLoopGuard",
    "StutterGuard",
]
