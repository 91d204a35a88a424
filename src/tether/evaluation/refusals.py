"""Calls governance refused before they reached the journal, in the mind log.

A refused call leaves no journal entry: its gate (policy, budget, approval, loop guard) raised
before its intent was recorded. It leaves a ``call_refused`` event instead
(``tether.graph.context.REFUSED_EVENT``, persisted with the step like every event a node
emits): the call's journal key and request, the error, and how many calls of each kind the
task had taken keys for. Each becomes a mind-log entry with status

* ``denied``: a ``PolicyViolationError`` (a policy's deny, a rejected approval); the node got
  the error and went on;
* ``stopped``: an ``EscalationSignal`` (a budget or loop-guard trip, an approval to wait for);
  the run parked ESCALATED before the call, which runs (under the same key) if it is resumed,

and ``refused_by`` (``policy``, ``approval``, ``budget``, ``loop_guard``...) with the error's
message as the reason. It is placed after the journaled calls its task had made before it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.evaluation.journal_keys import CallSite, call_site
from tether.graph.context import REFUSED_EVENT
from tether.store.types import Event

__all__ = ["REFUSED_EVENT", "Refusal", "placed", "refusals"]

DENIED = "denied"
STOPPED = "stopped"
_REJECTED = re.compile(r"\bapproval \S+ was rejected\b")
"""How ``tether.governance.approvals_request.granted`` words a rejected approval."""


@dataclass(frozen=True, slots=True)
class Refusal:
    seq: int
    key: str
    kind: str
    """The journal kind the call would have had: ``model``, ``tool``..."""
    request: Any
    status: str
    refused_by: str
    error: dict[str, Any]
    step: int | None
    node: str | None
    ts: float
    task_id: str | None
    calls: Mapping[str, int]


def refused_by(error: Mapping[str, Any]) -> str:
    """Who refused: the escalation's kind for a trip, else ``approval`` for a rejected
    approval and ``policy`` for any other denial."""
    if error.get("type") == "EscalationSignal":
        return str(error.get("kind") or "guard")
    return "approval" if _REJECTED.search(str(error.get("message", ""))) else "policy"


def refusals(events: Sequence[Event]) -> list[Refusal]:
    """The run's ``call_refused`` events, in order."""
    out: list[Refusal] = []
    for e in events:
        if e.type != REFUSED_EVENT:
            continue
        d = e.data
        error = dict(d.get("error") or {})
        calls = d.get("calls")
        out.append(
            Refusal(
                e.seq, str(d.get("key", "")), str(d.get("kind", "")), d.get("request"),
                STOPPED if error.get("type") == "EscalationSignal" else DENIED,
                refused_by(error), error, e.step, e.node, e.ts,
                None if d.get("task_id") is None else str(d["task_id"]),
                calls if isinstance(calls, Mapping) else {},
            )
        )  # fmt: skip
    return out


def _before(site: CallSite | None, key: str, r: Refusal) -> bool:
    """Whether the journaled call at ``site`` was made before the refused call ``r``: the same
    task, a call whose key the task had taken already (not a later retry of ``r`` itself)."""
    if site is None or site.task_id != r.task_id or key == r.key:
        return False
    return site.index < int(r.calls.get(site.kind, 0) or 0)


def _anchor(keys: Sequence[str], sites: Sequence[CallSite | None], r: Refusal) -> int:
    """The index of the last journaled call before ``r`` (-1: before every one): the last of
    its task made before it, else the last one of an earlier step."""
    for j in range(len(keys) - 1, -1, -1):
        if _before(sites[j], keys[j], r):
            return j
    if r.step is not None:
        for j in range(len(keys) - 1, -1, -1):
            site = sites[j]
            if site is not None and site.step < r.step:
                return j
    return -1


def placed(run_id: str, keys: Sequence[str], found: Sequence[Refusal]) -> list[tuple[int, Refusal]]:
    """Each refusal with the index of the journaled call it follows, in order (by that index,
    then as the events came)."""
    sites = [call_site(run_id, k) for k in keys]
    return sorted(((_anchor(keys, sites, r), r) for r in found), key=lambda p: (p[0], p[1].seq))
