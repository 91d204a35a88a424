"""``tether runs retry`` and ``tether runs requeue``: FAILED runs back to the queue.

Both only requeue (PLANNED, claimable at once, attempts reset); a worker (``tether worker``, or
any ``Runtime(recover=True)`` serving the workflow) executes the run from its last checkpoint.
To execute a FAILED run in the CLI process instead, use ``tether runs resume RUN_ID``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from tether.cli.commands import Settings, cli_runtime, cli_store
from tether.cli.render import Output, status_text
from tether.core.errors import InvalidInputError
from tether.core.lifecycle import RunStatus
from tether.graph.requeue import dead_lettered
from tether.graph.run_retry import is_dead_lettered
from tether.store.types import RunRecord

ACTIONS = ("retry", "requeue")


@dataclass(slots=True)
class RetryView:
    run: RunRecord
    dead_letter: bool
    """Whether the run was in the dead letter before the retry."""


@dataclass(slots=True)
class RequeueView:
    run_ids: list[str]
    dead_letter: bool


def add_parsers(
    rsub: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    positive_int: Callable[[str], int],
) -> None:
    p = rsub.add_parser(
        "retry",
        parents=[common],
        help="requeue a FAILED run (dead-lettered or not) for any worker, attempts reset",
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p = rsub.add_parser(
        "requeue",
        parents=[common],
        help="requeue FAILED runs in bulk (--dead-letter: those out of retry attempts)",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--dead-letter",
        action="store_true",
        help="the dead-lettered runs (FAILED after their last retryable attempt)",
    )
    which.add_argument(
        "--all-failed",
        action="store_true",
        help="every FAILED run, whatever failed it (after fixing a bug, say)",
    )
    p.add_argument("--workflow", metavar="W", help="only runs of this workflow")
    p.add_argument("--queue", metavar="Q", help="only runs of this queue")
    p.add_argument("--limit", type=positive_int, metavar="N", help="at most N runs (default: all)")


async def dead_letter_runs(
    settings: Settings,
    workflow: str | None,
    limit: int,
    statuses: Sequence[str] = (),
    thread: str | None = None,
) -> list[RunRecord]:
    """``runs list --dead-letter``: the dead-lettered runs, newest first."""
    if statuses or thread:
        raise InvalidInputError(
            "--dead-letter lists FAILED runs out of retry attempts: it takes --workflow and "
            "--limit, not --status or --thread"
        )
    async with cli_store(settings) as store:
        return await dead_lettered(store, workflow=workflow, limit=limit)


async def retry_run(settings: Settings, run_id: str) -> RetryView:
    async with cli_runtime(settings) as rt:
        was_dead = is_dead_lettered(await rt.get_run(run_id))
        await rt.retry(run_id, actor=settings.actor)
        return RetryView(await rt.get_run(run_id), was_dead)


async def requeue_runs(
    settings: Settings,
    dead_letter: bool,
    workflow: str | None,
    queue: str | None,
    limit: int | None,
) -> RequeueView:
    async with cli_runtime(settings) as rt:
        ids = await rt.requeue(
            dead_letter=dead_letter,
            workflow=workflow,
            queue=queue,
            limit=limit,
            actor=settings.actor,
        )
        return RequeueView(ids, dead_letter)


async def dispatch(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    """Run ``runs retry`` or ``runs requeue`` (``args.action``, one of ``ACTIONS``)."""
    if args.action == "retry":
        show_retry(out, await retry_run(settings, args.run_id))
    else:
        view = await requeue_runs(settings, args.dead_letter, args.workflow, args.queue, args.limit)
        show_requeue(out, view)


def show_retry(out: Output, view: RetryView) -> None:
    r = view.run
    if out.json_mode:
        out.emit_json({"run_id": r.run_id, "was_dead_letter": view.dead_letter, "run": r})
        return
    out.print(
        Text.assemble(
            ("requeued ", "bold"),
            r.run_id,
            "  ",
            status_text(RunStatus.FAILED),
            f" {out.arrow} ",
            status_text(r.status),
            ("  (from the dead letter)" if view.dead_letter else "", "dim"),
        )
    )
    out.print(Text("  a worker serving its workflow resumes it from its last checkpoint", "dim"))


def show_requeue(out: Output, view: RequeueView) -> None:
    if out.json_mode:
        out.emit_json(
            {
                "requeued": len(view.run_ids),
                "dead_letter": view.dead_letter,
                "run_ids": view.run_ids,
            }
        )
        return
    n = len(view.run_ids)
    what = "dead-lettered" if view.dead_letter else "failed"
    out.print(Text.assemble(("requeued ", "bold"), f"{n} {what} run{'' if n == 1 else 's'}"))
