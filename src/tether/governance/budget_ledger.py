"""What a call holds in a ledger before it runs and what it is charged after, per dimension;
and the trip raised when a reservation does not fit."""

from __future__ import annotations

import math
from typing import Any

from tether.core.errors import EscalationSignal
from tether.core.governor import CallOutcome, GovernedCall
from tether.store.budget import Ledger


def held(call: GovernedCall) -> dict[str, float]:
    """The most ``call`` may cost (its ``projected``), to reserve."""
    p = call.projected
    cost = float(p.get("cost", 0.0))
    if call.kind == "model":
        tin, tout = float(p.get("input_tokens", 0.0)), float(p.get("output_tokens", 0.0))
        return {
            "input_tokens": tin,
            "output_tokens": tout,
            "tokens": tin + tout,
            "cost": cost,
            "model_calls": 1.0,
        }
    return {"tool_calls": 1.0, "cost": cost}


def charged(call: GovernedCall, hold: dict[str, float], outcome: CallOutcome) -> dict[str, float]:
    """What ``call`` is charged once it ended: what it reported using. A call that never ran
    (a later part stopped it: not ok, no error) is charged nothing; a tool that reports no
    cost is charged what its contract declared."""
    if not outcome.ok and outcome.error is None:
        return {}
    u = outcome.usage
    if call.kind == "model":
        tin = _amount(u, "input_tokens", 0.0, hold)
        tout = _amount(u, "output_tokens", 0.0, hold)
        return {
            "input_tokens": tin,
            "output_tokens": tout,
            "tokens": tin + tout,
            "cost": _amount(u, "cost", 0.0, hold),
            "model_calls": 1.0,
        }
    return {"tool_calls": 1.0, "cost": _amount(u, "cost", hold.get("cost", 0.0), hold)}


def _amount(usage: dict[str, float], dim: str, default: float, hold: dict[str, float]) -> float:
    """``usage[dim]`` (``default`` when absent); what was held for ``dim`` when the reported
    amount is negative or not a finite number: a budget is never credited by a call."""
    value = usage.get(dim, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return hold.get(dim, 0.0)
    if not math.isfinite(value) or value < 0:
        return hold.get(dim, 0.0)
    return float(value)


def tokens_of(amounts: dict[str, float]) -> dict[str, float]:
    """The part of ``amounts`` a tenant quota counts (tokens, cost)."""
    return {k: v for k, v in amounts.items() if k in ("tokens", "cost")}


def trip(
    kind: str,
    row: Ledger,
    dim: str,
    asked: float,
    what: str,
    resume_hint: str,
    **more: Any,
) -> EscalationSignal:
    """The escalation of a call (``what``) refused by ``row`` on ``dim``."""
    limit, usage = row.limits.get(dim, 0.0), row.spent(dim)
    reason = (
        f"{kind} {dim}: {usage:g} spent (with calls in flight) + {asked:g} for {what} would "
        f"pass the limit {limit:g}; {resume_hint}"
    )
    return EscalationSignal(
        reason, kind=kind, dimension=dim, limit=limit, usage=usage, requested=asked, **more
    )
