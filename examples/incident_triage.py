"""An incident-triage assistant, offline: alert → runbook recall → bounded plan of read-only
diagnostics in the sandbox → diagnosis checked by a validator → the on-call lead's approval →
remediation → audit log.

    python examples/incident_triage.py                    # pauses at the approval
    python examples/incident_triage.py --auto-approve     # the on-call lead says yes
    python examples/incident_triage.py --model scripted   # deterministic, no local model

The run is durable (SQLite under ``--dir``): it pauses at the remediation's approval and prints
the ``tether approvals approve ...`` command; run the example again to continue the same run.
The runbooks live in tether's memory plane (recalled by MiniLM when installed); the three
diagnostics run fixed code in tether's sandbox over copies of the fake host's files and are
declared read-only, so the policy lets them run unasked; the restart is a write tool the policy
escalates to the on-call lead, deduplicated by an idempotency key. The plan is bounded by the
graph and by the run's budget. The model (the bundled SmolLM2 by default when installed) picks
the checks and writes the diagnosis; the graph keeps it safe whatever it answers. SmolLM2 is
small: it often fails the validator, and the incident then goes to a human with its evidence,
nothing restarted. The code is in ``examples/incident/`` (start with ``graph.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from incident.models import default_model
from incident.session import Options, triage
from rich.console import Console

from tether.core.lifecycle import RunStatus
from tether.tools.sandbox import WeakIsolationError


def budget_raise(text: str) -> tuple[str, float]:
    dim, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError(text)
        return dim.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--raise-budget takes DIMENSION=LIMIT, e.g. model_calls=40; got {text!r}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--model",
        default=default_model(),
        help="local (the bundled SmolLM2; the default when installed), scripted "
        "(deterministic), or a model spec such as openai:gpt-4o-mini",
    )
    parser.add_argument("--auto-approve", action="store_true", help="approve the remediation")
    parser.add_argument(
        "--raise-budget",
        type=budget_raise,
        action="append",
        default=[],
        metavar="DIM=LIMIT",
        help="continue a run its budget stopped, with this limit raised",
    )
    parser.add_argument("--dir", type=Path, default=Path(".tether/incident"), metavar="PATH")
    parser.add_argument(
        "--allow-weak-sandbox",
        action="store_true",
        help="run the diagnostics even where the kernel refuses the sandbox's namespaces",
    )
    args = parser.parse_args(argv)
    opts = Options(
        directory=args.dir,
        model=args.model,
        auto_approve=args.auto_approve,
        raise_budget=dict(args.raise_budget),
        weak_sandbox=args.allow_weak_sandbox,
    )
    try:
        outcome = asyncio.run(triage(opts, Console()))
    except WeakIsolationError as exc:
        print(f"{exc}\nrun again with --allow-weak-sandbox to accept it", file=sys.stderr)
        return 2
    waiting = outcome.status is RunStatus.ESCALATED
    return 0 if outcome.status is RunStatus.COMPLETED or waiting else 1


if __name__ == "__main__":
    sys.exit(main())
