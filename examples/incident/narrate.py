"""How the example shows a run: one line per event as it happens, then the audit chain."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from tether.governance import AuditRow, AuditVerification
from tether.store.types import Event

_QUIET = frozenset({"step_started", "step_finished", "node_started", "escalated"})


@dataclass
class Seen:
    """What was shown of a run (persisted events once, across the loops that follow it)."""

    last_seq: int = 0
    nodes: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, bool]] = field(default_factory=list)
    model_calls: int = 0
    tokens: int = 0


class Narrator:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.seen = Seen()

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def event(self, ev: Event) -> None:
        if ev.seq:
            if ev.seq <= self.seen.last_seq:
                return
            self.seen.last_seq = ev.seq
        if ev.type not in _QUIET:
            line = self._line(ev, ev.data)
            if line:
                self.say(line)

    def _line(self, ev: Event, d: dict[str, Any]) -> str | None:
        s = self.seen
        at = f"step {ev.step:>2} [cyan]{ev.node or '':<14}[/]" if ev.step else " " * 22
        if ev.type == "lifecycle":
            return f"  [magenta]{d['from'] or '∅'} → {d['to']}[/]  [dim]{d.get('reason', '')}[/]"
        if ev.type == "node_finished":
            s.nodes.append(str(ev.node))
            return None
        if ev.type == "alert":
            return f"  {at} [bold red]alert[/] {d['id']} {d['service']}@{d['host']}: {d['summary']}"
        if ev.type == "runbook":
            return f"  {at} recalled runbook [bold]{d['runbook']}[/] (score {d['score']:.2f})"
        if ev.type == "plan":
            call = d["call"]
            what = "conclude" if call is None else f"{call['tool']}({_args(call['args'])})"
            return f"  {at} plan #{d['round']}: {what}  [dim]by the {d['by']}; {d['why']}[/]"
        if ev.type == "plan_bound":
            return f"  {at} [yellow]plan bound reached[/]: {d['diagnostics']} diagnostics"
        if ev.type == "evidence":
            ok = "[green]ok[/]" if d["ok"] else "[red]failed[/]"
            return f"  {at} evidence [bold]{d['id']}[/] from {d['tool']} {ok}"
        if ev.type == "validation":
            verdict = "[green]passed[/]" if not d["problems"] else f"[red]{d['problems']}[/]"
            return f"  {at} validator round {d['round']}: {verdict}"
        if ev.type == "tool_call":
            s.tool_calls.append((str(d["tool"]), bool(d.get("ok"))))
            ok = "[green]ok[/]" if d.get("ok") else f"[red]{d.get('error')}[/]"
            return f"  {at} tool [bold]{d['tool']}[/] ({d['scope']}) {ok}"
        if ev.type == "model_call":
            s.model_calls += 1
            s.tokens += int(d.get("input_tokens") or 0) + int(d.get("output_tokens") or 0)
            return (
                f"  {at} [dim]model {d.get('model')}: {d.get('input_tokens')} in / "
                f"{d.get('output_tokens')} out tokens[/]"
            )
        if ev.type == "policy_decision":
            return f"  {at} [dim]policy {d.get('rule')}: {d.get('action')} {d.get('tool')}[/]"
        if ev.type == "approval_requested":
            intent = d.get("intent", {})
            return (
                f"  {at} [yellow]approval needed[/]: {intent.get('tool')}"
                f"({_args(intent.get('args', {}))}) by {d.get('approvers')}"
            )
        return f"  {at} [dim]{ev.type}[/]"

    def audit(self, rows: Sequence[AuditRow], check: AuditVerification) -> None:
        self.say(f"\n[bold]audit log[/] of the run (tenant {check.tenant!r}):")
        for r in rows:
            gist = _gist(json.loads(r.data_json))
            self.say(f"  #{r.seq:<3} {r.kind:<22} {gist}  [dim]{r.hash[:12]}[/]")
        if check.ok:
            self.say(
                f"  chain verified: {check.records} records, head #{check.head_seq} "
                f"{check.head_hash[:16]}"
            )
        else:
            assert check.broken is not None
            self.say(f"  [red bold]chain BROKEN[/]: {check.broken.message}")


def _args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _gist(data: dict[str, Any]) -> str:
    keys = ("tool", "action", "rule", "approver", "status", "approval_id", "dimension", "limit")
    parts = [f"{k}={data[k]}" for k in keys if data.get(k) not in (None, "")]
    return ", ".join(parts)[:110]
