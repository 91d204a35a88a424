"""``tether shadow report WORKFLOW``: how closely a shadow model's decisions matched the live
model's (``tether.evaluation.shadow_report``); exit 1 when the verdict is "halt rollout", so a
deploy script can gate on it."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.argtypes import when
from tether.cli.render import Output

if TYPE_CHECKING:  # the evaluation plane loads when the command runs, not for every `tether`
    from tether.evaluation import ParityReport

COMMANDS = ("shadow",)
EXIT_HALT = 1


def _distance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a distance in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a distance in [0, 1], got {value}")
    return value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("shadow", parents=[common], help="shadow-mode model comparison")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = ssub.add_parser(
        "report", parents=[common], help="parity of the shadow model, with a rollout verdict"
    )
    r.add_argument("workflow", metavar="WORKFLOW")
    r.add_argument(
        "--threshold", type=_distance, default=0.1, metavar="D",
        help="halt the rollout above this mean decision distance (default 0.1)",
    )  # fmt: skip
    r.add_argument("--since", type=when, default=None, metavar="T", help="calls logged from T")


def run(args: argparse.Namespace, out: Output) -> int:
    return asyncio.run(_run(args, out))


async def _run(args: argparse.Namespace, out: Output) -> int:
    from tether.evaluation import shadow_report
    from tether.evaluation.shadow_report import HALT

    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        report = await shadow_report(
            store, args.workflow, threshold=args.threshold, since=args.since
        )
    if out.json_mode:
        out.emit_json(report.as_dict())
    else:
        render(out, report)
    return EXIT_HALT if report.verdict == HALT else 0


def _f(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def render(out: Output, r: ParityReport) -> None:
    from tether.evaluation.shadow_report import HALT, PROCEED

    out.print(Text(f"shadow parity of {r.workflow}", style="bold"))
    out.print(f"  shadowed calls   {r.samples} ({r.compared} compared, {r.failed} failed)")
    out.print(f"  mean distance    {_f(r.mean_distance)}   (halt above {r.threshold:g})")
    out.print(f"  p95 distance     {_f(r.p95_distance)}")
    out.print(f"  max distance     {_f(r.max_distance)}")
    out.print(f"  above threshold  {r.above_threshold}")
    out.print(f"  tool agreement   {_f(r.tool_agreement, '.1%')}")
    out.print(f"  parity           {_f(r.parity, '.1%')}")
    style = "bold red" if r.verdict == HALT else "bold green" if r.verdict == PROCEED else "dim"
    out.print(Text(f"  verdict          {r.verdict}", style=style))
