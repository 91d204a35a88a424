"""The ``--drift [A,B]`` and ``--drift-threshold X`` options of ``tether worker`` and ``tether
serve``: check each completed run of those workflows for semantic drift (``DriftWatch``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the evaluation plane loads only when drift is asked for
    from tether.evaluation.drift import DriftMonitor


def workflow_names(text: str) -> list[str]:
    names = [w.strip() for w in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"expected workflow names separated by commas, got {text!r}"
        )
    return names


def threshold(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a similarity, got {text!r}") from None
    if not 0 < x <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return x


def add_drift_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--drift",
        nargs="?",
        const=True,
        default=False,
        type=workflow_names,
        metavar="A,B",
        help="check each completed run of these workflows (default: every --app workflow) for "
        "semantic drift, once (MiniLM; its flags: tether drift)",
    )
    p.add_argument(
        "--drift-threshold",
        type=threshold,
        metavar="X",
        help="similarity under which a run has drifted (0.7); implies --drift",
    )


def drift_choice(args: argparse.Namespace) -> bool | list[str]:
    """``True`` (the --app workflows), the names given, or ``False`` (no drift checks)."""
    chosen: bool | list[str] = args.drift
    return chosen or args.drift_threshold is not None


def drift_monitor(args: argparse.Namespace) -> DriftMonitor | None:
    """The monitor of ``--drift-threshold`` (None: the default MiniLM one, threshold 0.7)."""
    if args.drift_threshold is None:
        return None
    from tether.evaluation.drift import DriftMonitor

    return DriftMonitor(threshold=args.drift_threshold)


def drift_names(chosen: Any, workflows: list[str]) -> list[str]:
    """The workflow names a ``drift_choice`` stands for (none: no drift checks)."""
    if chosen is True:
        return list(workflows)
    return list(chosen) if chosen else []
