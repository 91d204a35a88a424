"""The dimensions a budget limits, and the checks of limits users hand in (``Budget(...)``,
``start(..., budget=...)``, ``resume(run, {"raise_budget": ...})``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.core.errors import InvalidInputError
from tether.core.finite import is_number
from tether.store.budget import LIMITS

BUDGET_DIMENSIONS = tuple(d for d in LIMITS if d != "runs")
"""What a ``Budget`` limits: ``input_tokens``, ``output_tokens``, ``tokens`` (both),
``cost``, ``steps``, ``tool_calls``, ``model_calls``, ``child_runs`` (runs in the tree besides
the root), ``wall_seconds`` (since the root run was created) and ``depth`` (of child runs)."""
QUOTA_DIMENSIONS = ("tokens", "cost", "runs")
"""What a ``Quota`` limits per tenant and period."""


def check_number(what: str, value: Any) -> float:
    """``value`` as a limit: a finite number >= 0 (a bool is not a number here)."""
    if not is_number(value):  # NaN, infinity, an int past any float, a bool, not a number
        raise InvalidInputError(f"{what} must be a number >= 0, got {value!r}")
    if value < 0:
        raise InvalidInputError(f"{what} must be >= 0, got {value!r}")
    return float(value)


def check_limits(
    values: Any, where: str, dimensions: tuple[str, ...] = BUDGET_DIMENSIONS
) -> dict[str, float]:
    """``values`` (dimension → limit) checked: known dimensions, numbers >= 0."""
    if not isinstance(values, Mapping):
        raise InvalidInputError(
            f"{where} takes a mapping of dimension to limit, e.g. {{'cost': 2.0}}; "
            f"got {type(values).__name__}"
        )
    unknown = sorted(str(k) for k in values if k not in dimensions)
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown budget dimension(s) {unknown}; known: {', '.join(dimensions)}"
        )
    return {str(k): check_number(f"{where}[{k!r}]", v) for k, v in values.items()}


def check_raise(current: Mapping[str, float], raises: Any) -> dict[str, float]:
    """The limits of ``resume(run, {"raise_budget": raises})`` against the envelope's
    ``current`` limits: known dimensions, numbers, none lower than it is now."""
    new = check_limits(raises, "raise_budget")
    if not new:
        raise InvalidInputError(
            "raise_budget is empty: name the limit(s) to raise, e.g. {'raise_budget': "
            "{'cost': 2.0}}"
        )
    lower = {d: (current[d], v) for d, v in new.items() if d in current and v < current[d]}
    if lower:
        said = ", ".join(f"{d} is {old:g}, asked {v:g}" for d, (old, v) in lower.items())
        raise InvalidInputError(
            f"raise_budget can only raise limits (new limit = the value given): {said}"
        )
    return new
