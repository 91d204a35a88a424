"""How the example tells the story: a line per event of the run (and of its diagnostic child
run), the waiting notice with the commands that answer it, and the closing summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.governance import ApprovalRecord, AuditVerification
from tether.store.types import Event

from .cloud import Action
from .simclock import at, hours

Say = Callable[[str], None]
QUIET = frozenset({"step_started", "node_started", "node_finished", "escalated", "call_refused"})
AGENT_EVENTS = frozenset({"model_call", "react_thought", "tool_call"})
"""What the story shows of the diagnostic agent's child run."""


@dataclass
class Narrator:
    say: Say
    printed: dict[str, int] = field(default_factory=dict)
    """Run id -> the seq of its last persisted event shown."""

    def event(self, ev: Event, indent: str = "  ", only: frozenset[str] | None = None) -> bool:
        """Show ``ev`` (of the types in ``only``, when given) unless it was shown already;
        whether it was new."""
        if ev.seq:
            if ev.seq <= self.printed.get(ev.run_id, 0):
                return False
            self.printed[ev.run_id] = ev.seq
        shown = ev.type not in QUIET and (only is None or ev.type in only)
        line = describe(ev) if shown else None
        if line:
            self.say(f"{indent}{line}")
        return True


def describe(ev: Event) -> str | None:
    d = ev.data
    where = f"step {ev.step} {ev.node}: " if ev.step and ev.node else ""
    if ev.type == "lifecycle":
        return f"{d.get('from') or '-'} -> {d['to']}  ({d.get('reason', '')})"
    if ev.type == "step_finished":
        return f"step {ev.step} done, wrote {', '.join(d.get('keys') or []) or 'nothing'}"
    if ev.type == "tool_call":
        ok = "ok" if d.get("ok") else f"refused: {d.get('error')}"
        return f"{where}tool {d['tool']} ({d.get('scope')}) {ok}"
    if ev.type == "model_call":
        return (
            f"{where}model {d.get('model')}: {d.get('input_tokens')} tokens in, "
            f"{d.get('output_tokens')} out"
        )
    if ev.type == "react_thought":
        calls = ", ".join(d.get("calls") or []) or "none (answers)"
        return f"{where}thought {d.get('iteration')}: tool calls {calls}"
    if ev.type == "policy_decision":
        if str(d.get("rule")).startswith("default:"):
            return None  # reads allowed by default: the tool_call line says enough
        return f"{where}policy {d.get('rule')}: {d.get('action')} {d.get('tool')} ({d['reason']})"
    if ev.type == "approval_requested":
        args = (d.get("intent") or {}).get("args", {})
        return (
            f"{where}approval {d.get('approval_id')} asked of {d.get('approvers')} to stop "
            f"{args.get('resource_id')}, by {at(float(d['deadline_at']))}"
        )
    if ev.type == "approval_escalated":
        return f"ESCALATED: {d.get('from')} did not answer; the request goes to {d.get('to')}"
    return f"{where}{ev.type}"


def waiting(
    say: Say, rec: ApprovalRecord, eligible: Sequence[str], now: float, command: str
) -> None:
    """The notice of a parked run: who must answer, by when, and the commands to do it."""
    args = rec.intent.get("args", {})
    nxt = (rec.rule.get("on_deadline") or {}) if isinstance(rec.rule, dict) else {}
    then = (
        f"then it escalates to role {nxt['escalate']['roles'][0]!r}"
        if isinstance(nxt, dict) and "escalate" in nxt
        else "then it is rejected"
    )
    due = rec.deadline_at
    by = f"; deadline {at(due)} (in {hours(max(0.0, due - now))}), {then}" if due else ""
    who = " or ".join(eligible) or "nobody registered"
    say(
        f"\nWAITING for {who} ({', '.join(rec.rule['roles'])}) to approve stopping "
        f"{args.get('resource_id')}{by}."
    )
    say("  the run is parked durably in the store; nothing is stopped until someone approves:")
    for person in eligible:
        say(f"  approve: {command} --approve-as {person}")
        say(f"  reject:  {command} --reject-as {person}")
    say(f"  let time pass: {command} --simulate-hours 3")


def summary(
    say: Say,
    run: Any,
    state: dict[str, Any],
    rec: ApprovalRecord | None,
    actions: Sequence[Action],
    audit: Sequence[AuditVerification],
    inspect: Sequence[str],
) -> None:
    spike, p = state.get("spike") or {}, state.get("proposal") or {}
    ev = state.get("event") or {}
    say(f"\n== FinOps run {run.run_id}: {run.status.value} after {run.step} steps")
    say(
        f"cost spike   : {ev.get('account')} on {ev.get('day')}: ${ev.get('total_usd', 0):,.2f} "
        f"against ${ev.get('baseline_usd', 0):,.2f} a day; service {spike.get('service')} "
        f"${spike.get('before_usd', 0):,.2f} -> ${spike.get('after_usd', 0):,.2f}"
    )
    if p:
        say(
            f"cause        : {p['resource_id']} ({p['kind']}, team {p['team']}) at "
            f"{p['utilisation_24h']:.0%} utilisation; {p['confirmed']}"
        )
    said = " ".join(str(state.get("answer") or "").split())[:300]
    say(f"agent said   : {said or state.get('diagnosis_problem') or '-'}")
    say(
        f"agent spent  : {state.get('model_calls', 0)} model calls, {state.get('tokens', 0)} "
        f"tokens, {state.get('tool_calls', 0)} read-only tool calls"
    )
    for line in approval_lines(rec):
        say(line)
    for a in actions:
        say(
            f"action       : {a.action} {a.resource_id} at {at(a.at)}, executed once "
            f"({a.requests} request(s), idempotency key {a.key})"
        )
    if not actions:
        say("action       : none; nothing was stopped")
    if state.get("outcome") == "stopped":
        say(f"savings      : ${p['saves_usd_per_day']:,.2f} per day")
    say(f"result       : {state.get('report')}")
    for v in audit:
        ok = "verified" if v.ok else f"BROKEN at #{v.broken.seq if v.broken else '?'}"
        say(f"audit chain  : {v.tenant or '(no tenant)'}: {v.records} records {ok}")
    say("inspect it:")
    for line in inspect:
        say(f"  {line}")


def approval_lines(rec: ApprovalRecord | None) -> list[str]:
    if rec is None:
        return ["approval     : none was needed"]
    start = float(rec.history[0]["at"]) if rec.history else 0.0
    out = [f"approval     : {rec.approval_id} requested {at(start)}, {rec.status}"]
    for h in rec.history:
        if h["what"] == "escalated":
            out.append(
                f"escalated    : {at(h['at'])} ({hours(h['at'] - start)} after the request), "
                f"{h['from']} -> {h['to']}"
            )
    for d in rec.decisions:
        by = f"{d['approver']} ({d['role']})" if d["role"] else "the deadline"
        why = f": {d['reason']}" if d.get("reason") else ""
        out.append(f"decided      : {d['decision']} by {by} at {at(d['at'])}{why}")
    return out
