"""How the demo shows a run: one line per event as it happens, and the closing summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from tether.store.types import Event

from .payments import Refund
from .shop import dollars

_QUIET = frozenset({"step_started", "node_started", "node_finished"})


@dataclass
class Tally:
    """What the demo saw of a run, across the processes that drove it."""

    lifecycle: list[str] = field(default_factory=list)
    tool_calls: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    approvals: list[str] = field(default_factory=list)
    trips: list[str] = field(default_factory=list)
    printed: int = 0
    """The seq of the last persisted event shown."""
    steps: int = 0


class Narrator:
    def __init__(self, console: Console, tally: Tally | None = None, *, quiet: bool = False):
        self.console = console
        self.tally = tally or Tally()
        self.quiet = quiet

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def event(self, ev: Event) -> None:
        """Count and show one event (persisted events only once, whoever follows again)."""
        if ev.seq:
            if ev.seq <= self.tally.printed:
                return
            self.tally.printed = ev.seq
        if ev.type in _QUIET:
            return
        line = self._count(ev)
        if line and not self.quiet:
            self.say(line)

    def _count(self, ev: Event) -> str | None:
        t, d = self.tally, ev.data
        where = f"step {ev.step:>2} [cyan]{ev.node or '':<13}[/]" if ev.step else " " * 21
        if ev.type == "lifecycle":
            hop = d["to"]
            if not t.lifecycle or t.lifecycle[-1] != hop:
                t.lifecycle.append(hop)
            return f"  [magenta]{d['from'] or '∅'} → {hop}[/]  [dim]{d.get('reason', '')}[/]"
        if ev.type == "step_finished":
            t.steps = max(t.steps, ev.step or 0)
            keys = ", ".join(d.get("keys") or []) or "-"
            return f"  step {ev.step:>2} done  [dim]wrote {keys}[/]"
        if ev.type == "tool_call":
            t.tool_calls += 1
            ok = "[green]ok[/]" if d.get("ok") else f"[red]{d.get('error')}[/]"
            return f"  {where} tool [bold]{d['tool']}[/] ({d['scope']}) {ok}"
        if ev.type == "model_call":
            t.model_calls += 1
            t.input_tokens += int(d.get("input_tokens") or 0)
            t.output_tokens += int(d.get("output_tokens") or 0)
            t.cost += float(d.get("cost") or 0.0)
            return (
                f"  {where} model {d.get('model')} {d.get('input_tokens')} in / "
                f"{d.get('output_tokens')} out tokens, {float(d.get('latency') or 0):.2f} s"
            )
        if ev.type == "approval_requested":
            args = d.get("intent", {}).get("args", {})
            return (
                f"  {where} [yellow]approval needed[/]: {d.get('intent', {}).get('tool')} "
                f"{dollars(int(args.get('amount_cents', 0)))} ({d.get('approvers')})"
            )
        if ev.type == "loop_guard_tripped":
            trip = _trip(d)
            t.trips.append(trip)
            return f"  {where} [red bold]loop guard tripped[/]: {trip}"
        if ev.type == "escalated":
            return None  # the lifecycle hop and the specific event say it
        if ev.type in ("policy_decision", "budget_soft_limit", "loop_warning"):
            return f"  {where} [yellow]{ev.type}[/] [dim]{_short(d)}[/]"
        return f"  {where} [dim]{ev.type} {_short(d)}[/]"

    def summary(
        self,
        run: Any,
        state: dict[str, Any],
        refunds: Sequence[Refund],
        approvals: Sequence[Any],
        inspect: Sequence[str],
    ) -> None:
        t = self.tally
        table = Table(title=f"run {run.run_id}", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        table.add_row("status", f"{run.status.value} after {run.step} steps")
        table.add_row("lifecycle", " → ".join(compress(t.lifecycle)) or "-")
        table.add_row(
            "model",
            f"{t.model_calls} calls, {t.input_tokens} in / {t.output_tokens} out tokens, "
            f"${t.cost:.4f}",
        )
        table.add_row("tool calls", str(t.tool_calls))
        for rec in approvals:
            who = ", ".join(str(v.get("approver")) for v in rec.decisions) or "-"
            table.add_row("approval", f"{rec.approval_id} {rec.status} by {who}")
        for trip in t.trips:
            table.add_row("trip", trip)
        for r in refunds:
            table.add_row(
                "ledger",
                f"{r.reference}: {dollars(r.amount_cents)} for order #{r.order_id} "
                f"({r.charge_id}), {'settled' if r.settled else 'pending'}; "
                f"{r.requests} request(s) from the agent, paid once",
            )
        if not refunds:
            table.add_row("ledger", "no refund")
        table.add_row("reply", str(state.get("reply") or "-"))
        self.console.print()
        self.console.print(table)
        self.say("\ninspect it:")
        for line in inspect:
            self.say(f"  {line}")


def compress(path: Sequence[str]) -> list[str]:
    """A lifecycle path with its back-and-forth folded: A B A B A B -> "(A ⇄ B) x3"."""
    out: list[str] = []
    i = 0
    while i < len(path):
        a = path[i]
        b = path[i + 1] if i + 1 < len(path) else None
        n, j = 0, i
        while b is not None and j + 1 < len(path) and path[j] == a and path[j + 1] == b:
            n, j = n + 1, j + 2
        if n >= 2:
            out.append(f"({a} ⇄ {b}) x{n}")
            i = j
        else:
            out.append(a)
            i += 1
    return out


def _trip(data: dict[str, Any]) -> str:
    if data.get("guard") == "stutter":
        return (
            f"stutter: {data.get('count')} identical {data.get('tool')} calls, "
            f"call {int(data.get('count') or 0) + 1} stopped before it ran"
        )
    reason = str(data.get("reason") or data)
    return f"{data.get('guard')}: {reason[:160]}"


def _short(data: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("intent", "details"))
    return text if len(text) <= 140 else text[:137] + "..."
