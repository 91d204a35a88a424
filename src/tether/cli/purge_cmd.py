"""``tether runs purge``: delete finished runs older than a time, whole families only.

The same purge as ``Runtime.purge`` and ``Retention(finished_ttl=...)``: COMPLETED, FAILED and
CANCELLED runs last updated before the cutoff, with their checkpoints, events, journals and
personal data; a run started by another run goes only with its whole family (``store.purge``).
Pages of families are deleted in short transactions, so workers go on meanwhile.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from tether.cli.argtypes import when
from tether.cli.commands import Settings, cli_runtime
from tether.cli.render import Output
from tether.core.errors import InvalidInputError

ACTIONS = ("purge",)


@dataclass(slots=True)
class PurgeView:
    runs: int
    finished_before: float
    dry_run: bool


def add_parsers(rsub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    p = rsub.add_parser(
        "purge",
        parents=[common],
        help="delete finished runs last updated before a time (whole families only)",
    )
    p.add_argument(
        "--older-than",
        type=when,
        required=True,
        metavar="T",
        help="runs finished before T: a duration ago (30d, 12h), an ISO date or Unix seconds",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="count the runs that would go; delete nothing"
    )


async def purge_runs(settings: Settings, finished_before: float, dry_run: bool) -> PurgeView:
    older_than = time.time() - finished_before
    if older_than < 0:
        raise InvalidInputError(
            "--older-than is in the future: give a duration ago (30d) or a past date"
        )
    async with cli_runtime(settings) as rt:
        runs = await rt.purge(older_than, dry_run=dry_run)
    return PurgeView(runs, finished_before, dry_run)


async def dispatch(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    show(out, await purge_runs(settings, args.older_than, args.dry_run))


def show(out: Output, view: PurgeView) -> None:
    cutoff = datetime.fromtimestamp(view.finished_before, UTC).isoformat(timespec="seconds")
    if out.json_mode:
        out.emit_json(
            {"runs": view.runs, "finished_before": view.finished_before, "dry_run": view.dry_run}
        )
        return
    verb = "would purge" if view.dry_run else "purged"
    out.print(
        Text.assemble(
            (f"{verb} ", "bold"),
            f"{view.runs} run{'s' if view.runs != 1 else ''}",
            (
                f"  finished before {cutoff}; a run started by another goes only with its family",
                "dim",
            ),
        )
    )
