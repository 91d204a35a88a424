"""``tether drift``: the semantic-drift flags of a run, or of a workflow over a period
(``tether.evaluation.drift_flags``), and ``--check`` to check a finished run now.

Flags come from after-run checks (``check_drift``, ``DriftWatch``, ``tether worker --drift``)
and from checks inside the run (``add_drift_route``, ``check_plan_drift``).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from tether.cli import commands as cmd
from tether.cli.argtypes import positive_int, when
from tether.cli.drift_opts import threshold
from tether.cli.render import Output, fmt_time
from tether.core.errors import InvalidInputError
from tether.store.evaluation_log import FlagRow

COMMANDS = ("drift",)
TEXT_WIDTH = 60


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "drift",
        parents=[common],
        help="semantic-drift flags of a run, or of a workflow over a period",
        description="A run's drift flags (its output under the similarity threshold to its "
        "goal, or a plan to the one before), or, without RUN_ID, the flags of the latest "
        "checks of every run (--workflow, --since).",
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="one run's flags")
    p.add_argument("--workflow", default=None, metavar="W", help="only this workflow's flags")
    p.add_argument(
        "--since", type=when, default=None, metavar="T",
        help="flags from T: a duration ago (24h, 7d), an ISO date or Unix seconds",
    )  # fmt: skip
    p.add_argument("--limit", type=positive_int, default=100, metavar="N", help="at most N (100)")
    p.add_argument(
        "--check", action="store_true",
        help="check RUN_ID now (MiniLM; the run must have finished), then list its flags",
    )  # fmt: skip
    p.add_argument(
        "--threshold", type=threshold, default=None, metavar="X",
        help="with --check: the similarity under which it drifted (0.7)",
    )  # fmt: skip


def run(args: argparse.Namespace, out: Output) -> int:
    return asyncio.run(_run(args, out))


async def _run(args: argparse.Namespace, out: Output) -> int:
    if args.check and args.run_id is None:
        raise InvalidInputError("--check needs the RUN_ID of the run to check")
    if args.threshold is not None and not args.check:
        raise InvalidInputError("--threshold applies to --check only")
    if args.run_id is not None and args.workflow is not None:
        raise InvalidInputError("pass RUN_ID or --workflow, not both")
    # the evaluation plane (and the model it may load) for this command only
    from tether.evaluation import DriftMonitor, check_drift, drift_flags

    async with cmd.cli_store(cmd.settings(args, app=False)) as store:
        if args.check:
            monitor = DriftMonitor() if args.threshold is None else DriftMonitor(
                threshold=args.threshold
            )  # fmt: skip
            report = await check_drift(store, args.run_id, monitor=monitor)
            if not out.json_mode:
                verdict = "drifted" if report.drifted else "on course"
                out.err.print(Text(f"checked {args.run_id}: {verdict}", style="dim"))
        rows = await drift_flags(
            store, run_id=args.run_id, workflow=args.workflow, since=args.since, limit=args.limit
        )
    if out.json_mode:
        out.emit_json([_json(r) for r in rows])
    elif not rows:
        out.err.print(Text("no drift flags", style="dim"))
    else:
        out.print(table(rows, one_run=args.run_id is not None, arrow=out.arrow))
    return 0


def _cut(value: Any) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= TEXT_WIDTH else text[: TEXT_WIDTH - 1] + "…"


def table(rows: list[FlagRow], *, one_run: bool, arrow: str = "→") -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    cols = ["KIND", "KEY", "SIMILARITY", "THRESHOLD", "WHEN"]
    for col in cols if one_run else ["RUN", "WORKFLOW", *cols]:
        t.add_column(col, no_wrap=True)
    if one_run:
        t.add_column("COMPARED")
    for r in rows:
        cells = [r.kind, r.key, f"{r.score:.2f}", f"{r.threshold:.2f}", fmt_time(r.ts)]
        if one_run:
            left, right = r.data.get("left"), r.data.get("right")
            said = f"{_cut(left)} {arrow} {_cut(right)}" if left or right else ""
            t.add_row(*cells, said)
        else:
            t.add_row(r.run_id, r.workflow, *cells)
    return t


def _json(r: FlagRow) -> dict[str, Any]:
    return {
        "run_id": r.run_id, "workflow": r.workflow, "kind": r.kind, "key": r.key, "ts": r.ts,
        "similarity": r.score, "threshold": r.threshold, "data": dict(r.data),
    }  # fmt: skip
