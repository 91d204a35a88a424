"""``tether mindlog RUN``: every action of a run beside its rationale, its inputs, its raw
output and what the agent said next (``tether.evaluation.mind_log``)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.render import Output, compact

if TYPE_CHECKING:  # the evaluation plane loads when the command runs, not for every `tether`
    from tether.evaluation import MindEntry, MindLog

COMMANDS = ("mindlog",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "mindlog", parents=[common], help="a run's actions with their rationale and raw outputs"
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument(
        "--actions", action="store_true", help="only the actions (tool calls and effects)"
    )
    p.add_argument(
        "--width", type=int, default=160, metavar="N", help="cut values at N characters (0: never)"
    )


def run(args: argparse.Namespace, out: Output) -> int:
    return asyncio.run(_run(args, out))


async def _run(args: argparse.Namespace, out: Output) -> int:
    from tether.evaluation import mind_log

    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        log = await mind_log(store, args.run_id)
    if args.actions:
        log.entries = [e for e in log.entries if e.kind != "thought"]
    if out.json_mode:
        out.emit_json(log.as_dict())
    else:
        render(out, log, max(0, args.width))
    return 0


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if not width or len(text) <= width else text[: width - 1] + "…"


def _where(e: MindEntry) -> str:
    return f"step {e.step} {e.node}" if e.step is not None else "-"


def render(out: Output, log: MindLog, width: int) -> None:
    out.print(Text(f"mind log of {log.run_id} ({log.workflow})", style="bold"))
    for plan in log.plans:
        steps = f" {out.arrow} ".join(plan.get("steps") or [])
        out.print(Text(f"  plan at step {plan.get('step')}: {steps}", style="cyan"))
    if not log.entries:
        out.print(Text("  no journaled calls", style="dim"))
    for e in log.entries:
        head = Text(f"#{e.index:<3} {_where(e):<18} ")
        if e.kind == "thought":
            head.append("THOUGHT ", style="blue")
            head.append(e.name)
            if e.refused_by is not None:  # a model call governance refused
                head.append(f" {e.status} ({e.refused_by})", style="red")
            out.print(head)
            decided = e.output or {}
            if decided.get("text"):
                out.print(f"       said:  {_cut(decided['text'], width)}")
            for c in decided.get("tool_calls") or ():
                out.print(f"       calls: {c.get('name')}({compact(c.get('arguments'), width)})")
            if e.refused_by is not None and e.error:
                out.print(Text(f"       error: {_cut(str(e.error.get('message')), width)}", "red"))
            _unsupported(out, e)
            continue
        head.append("ACTION " if e.kind == "action" else "EFFECT ", style="bold yellow")
        head.append(e.name + " ")
        head.append(e.status, style="green" if e.status == "done" else "red")
        if e.refused_by is not None:
            head.append(f" ({e.refused_by})", style="red")
        out.print(head)
        why = _cut(e.rationale, width) if e.rationale is not None else "(none given)"
        source = f" ({e.rationale_source})" if e.rationale_source else ""
        out.print(f"       why{source}: {why}")
        out.print(f"       in:    {compact(e.input, width)}")
        if e.error:
            said = f"{e.error.get('type')}: {e.error.get('message')}"
            out.print(Text(f"       error: {_cut(said, width)}", "red"))
        else:
            out.print(f"       out:   {compact(e.output, width)}")
        if e.conclusion is not None:
            out.print(f"       then:  {_cut(e.conclusion, width)}")
            _unsupported(out, e)
        if e.used_later is not None:
            used = "yes" if e.used_later else "no"
            out.print(Text(f"       used later: {used}", "green" if e.used_later else "yellow"))


def _unsupported(out: Output, e: MindEntry) -> None:
    if e.unsupported:
        numbers = ", ".join(e.unsupported)
        out.print(Text(f"       numbers no tool gave: {numbers}", style="bold red"))
