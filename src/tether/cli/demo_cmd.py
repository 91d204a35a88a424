"""``tether demo``: the offline support copilot (see ``tether.demo``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.prompt import Confirm

from tether.cli.argtypes import positive_int
from tether.cli.render import Output

COMMANDS = ("demo",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="the support copilot: a governed, durable refund agent, fully offline",
        description=(
            "A support copilot handles 'I was charged twice for order #1234, please refund': it "
            "routes the intent, recalls the refund policy from memory, looks the order up, asks "
            "a support lead to approve the refund, meets a payment API that never says whether "
            "the money moved, and is stopped by the stuttering check before its 4th identical "
            "refund call. Run it again to continue an unfinished demo (after --crash-after)."
        ),
    )
    p.add_argument(
        "ticket", nargs="?", default=None, help="the customer's message (default: order #1234's)"
    )
    p.add_argument(
        "--model",
        default="local",
        metavar="SPEC",
        help="local (the bundled SmolLM2, default), scripted (deterministic), or a model spec "
        "such as openai:gpt-4o-mini",
    )
    p.add_argument(
        "--auto-approve",
        action="store_true",
        help="answer the support lead's questions with yes instead of asking in the terminal",
    )
    p.add_argument(
        "--crash-after",
        type=positive_int,
        metavar="N",
        help="SIGKILL this process once the run has committed step N (run `tether demo` again "
        "to continue it)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=Path(".tether/demo"),
        metavar="PATH",
        help="where the demo keeps its run store, payment ledger and approver key (.tether/demo)",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    from tether.demo.session import DEFAULT_TICKET, DemoOptions, run_demo  # with its models

    opts = DemoOptions(
        directory=args.dir,
        model=args.model,
        auto_approve=args.auto_approve,
        crash_after=args.crash_after,
        ticket=DEFAULT_TICKET if args.ticket is None else args.ticket,
    )
    console = out.out
    ask = _ask(console) if sys.stdin.isatty() and not args.auto_approve else None
    outcome = asyncio.run(run_demo(opts, console, ask))
    return 0 if outcome.status.value in ("COMPLETED", "ESCALATED", "CANCELLED") else 1


def _ask(console: Console) -> Any:
    def ask(question: str) -> bool:
        return bool(Confirm.ask(question, console=console, default=True))

    return ask
