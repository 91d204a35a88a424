"""An autonomous FinOps agent, offline: a cost spike starts a durable run; a diagnostic ReAct
agent (read-only tools) finds the idle GPU cluster behind it; stopping the cluster waits for
its owner's signed approval; after two hours of silence a durable timer escalates the request
to the manager; the cluster is stopped only after an approval, exactly once.

    python examples/finops_agent.py --auto-approve          # the whole story, to the end
    python examples/finops_agent.py                         # pauses: prints how to answer
    python examples/finops_agent.py --simulate-hours 3      # 3 h pass: the manager is asked
    python examples/finops_agent.py --approve-as sam        # the manager approves
    python examples/finops_agent.py --reject-as priya       # or: the owner rejects

Everything lives under --dir (default .tether/finops): the run store (SQLite), the fake
cloud's ledger, the approvers' keys and the simulated clock. Each invocation continues the run
for the same cost spike; delete the directory to start the story again. --model scripted is
deterministic; the default uses the bundled local model when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from finops.session import PEOPLE, Options, run_finops

from tether.core.errors import TetherError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").split("\n")[5:11]),
    )
    parser.add_argument("--dir", type=Path, default=Path(".tether/finops"), metavar="PATH")
    parser.add_argument(
        "--model",
        default="auto",
        metavar="SPEC",
        help="auto (the bundled local model if installed, else scripted), scripted, local, or "
        "a model spec such as openai:gpt-4o-mini",
    )
    parser.add_argument(
        "--auto-approve", action="store_true", help="whoever may decide now approves"
    )
    parser.add_argument(
        "--simulate-hours",
        type=float,
        default=0.0,
        metavar="N",
        help="let N hours pass with nobody answering (durable timers fire on the way)",
    )
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--approve-as", choices=sorted(PEOPLE), metavar="NAME", help="priya or sam")
    who.add_argument("--reject-as", choices=sorted(PEOPLE), metavar="NAME", help="priya or sam")
    parser.add_argument("--reason", default="", help="why (with --reject-as)")
    args = parser.parse_args(argv)
    if args.simulate_hours < 0:
        parser.error("--simulate-hours takes hours >= 0")
    opts = Options(
        directory=args.dir,
        model=args.model,
        auto_approve=args.auto_approve,
        simulate_hours=args.simulate_hours,
        approve_as=args.approve_as,
        reject_as=args.reject_as,
        reason=args.reason,
        command=f"{Path(sys.executable).name} {sys.argv[0]}",
    )
    try:
        asyncio.run(run_finops(opts))
    except TetherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
