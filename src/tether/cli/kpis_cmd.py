"""``tether kpis``: agent KPIs per workflow over a period (``tether.evaluation.kpis``)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.argtypes import match_name, positive_int, when
from tether.cli.render import Output

if TYPE_CHECKING:  # the evaluation plane loads when the command runs, not for every `tether`
    from tether.evaluation import KpiSummary

COMMANDS = ("kpis",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("kpis", parents=[common], help="agent KPIs per workflow over a period")
    p.add_argument(
        "--workflow", type=match_name, default=None, metavar="W", help="only this workflow's runs"
    )
    p.add_argument(
        "--tenant", type=match_name, default=None, metavar="T", help="only this tenant's runs"
    )
    forms = "a duration ago (24h, 7d), an ISO date or Unix seconds"
    p.add_argument("--since", type=when, default=None, metavar="T", help=f"runs from T: {forms}")
    p.add_argument("--until", type=when, default=None, metavar="T", help="runs created before T")
    p.add_argument(
        "--limit", type=positive_int, default=None, metavar="N", help="at most the N newest runs"
    )


def run(args: argparse.Namespace, out: Output) -> int:
    return asyncio.run(_run(args, out))


async def _run(args: argparse.Namespace, out: Output) -> int:
    from tether.evaluation import kpis

    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        report = await kpis(
            store,
            workflow=args.workflow,
            tenant=args.tenant,
            since=args.since,
            until=args.until,
            max_runs=args.limit,
        )
    if out.json_mode:
        out.emit_json(report.as_dict())
        return 0
    if not report.runs:
        out.err.print(Text("no runs in this period", style="dim"))
        return 0
    groups = dict(sorted(report.by_workflow.items()))
    if args.workflow is None and len(groups) > 1:
        groups["(all)"] = report.overall
    out.print(table(groups))
    return 0


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


ROWS: list[tuple[str, Any]] = [
    ("runs", lambda s: str(s.runs)),
    ("completed", lambda s: str(s.completed)),
    ("plan fidelity", lambda s: _num(s.plan_fidelity, ".1%")),
    ("tool utility", lambda s: _num(s.tool_utility, ".1%")),
    ("thought/action", lambda s: _num(s.thought_to_action, ".2f")),
    ("tokens/completed", lambda s: _num(s.tokens_per_completed_task, ",.0f")),
    ("cost/completed $", lambda s: _num(s.cost_per_completed_task, ".4f")),
    ("validation fail", lambda s: _num(s.validation_failure_rate, ".1%")),
    ("tool args invalid", lambda s: _num(s.tool_argument_failure_rate, ".1%")),
    ("escalation rate", lambda s: _num(s.escalation_rate, ".1%")),
    ("latency p50 s", lambda s: _num(s.latency_p50, ".2f")),
    ("latency p95 s", lambda s: _num(s.latency_p95, ".2f")),
]


def table(groups: dict[str, KpiSummary]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    t.add_column("KPI")
    for name in groups:
        t.add_column(name, justify="right")
    for label, get in ROWS:
        t.add_row(label, *(get(s) for s in groups.values()))
    phases = sorted({p for s in groups.values() for p in s.phase_seconds})
    for p in phases:
        t.add_row(f"time {p} s", *(_num(s.phase_seconds.get(p), ".2f") for s in groups.values()))
    return t
