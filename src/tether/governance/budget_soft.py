"""The soft limit of a budget: past a fraction (default 80 %) of any limited dimension the
agent is told once, so it can wrap up before the hard stop: a ``budget_soft_limit`` event on
the run that saw it happen and a system note in the next model prompt of the run tree. Each
is marked in the ledger (``mark_ledger``), so it happens once however many runs and workers
share the envelope."""

from __future__ import annotations

from typing import Any

from tether.core.governor import GovernedCall
from tether.core.messages import Message
from tether.governance.scope import RunScope
from tether.store.budget import COUNTERS, BudgetStore, Ledger

COUNTED = frozenset(COUNTERS)
SOFT = frozenset((*COUNTERS, "wall_seconds"))
"""The dimensions a soft limit applies to (not ``depth``)."""


def crossed(row: Ledger, soft: float, elapsed: float, marks: list[str]) -> list[str]:
    """Limited dimensions whose settled usage reached ``soft`` of the limit, not in ``marks``."""
    out = []
    used = row.used
    for dim, limit in row.limits.items():
        if dim not in SOFT or dim in marks or limit <= 0:
            continue
        usage = used.get(dim, 0.0) if dim in COUNTED else elapsed
        if usage >= soft * limit:
            out.append(dim)
    return out


def _usage(row: Ledger, dim: str, elapsed: float) -> float:
    return elapsed if dim == "wall_seconds" else row.used.get(dim, 0.0)


def describe(row: Ledger, dims: list[str], elapsed: float) -> str:
    parts = []
    for d in dims:
        lim, use = row.limits[d], _usage(row, d, elapsed)
        parts.append(f"{d} at {100 * use / lim:.0f}% ({use:g} of {lim:g})")
    return "; ".join(parts)


async def announce(
    store: BudgetStore, scope: RunScope, row: Ledger, soft: float, elapsed: float
) -> None:
    """The event (and audit record) for each dimension that just crossed, once per envelope."""
    for dim in crossed(row, soft, elapsed, row.evented):
        if not await store.mark_ledger(row.key, "evented", dim):
            continue
        lim, use = row.limits[dim], _usage(row, dim, elapsed)
        data: dict[str, Any] = {
            "envelope": row.key,
            "dimension": dim,
            "limit": lim,
            "usage": use,
            "percent": round(100 * use / lim, 1),
            "soft": soft,
        }
        scope.emit("budget_soft_limit", data)
        await scope.audit("budget_soft_limit", data)


async def note(
    store: BudgetStore, call: GovernedCall, row: Ledger, soft: float, elapsed: float
) -> list[str]:
    """Put the soft-limit note in this model call's prompt for the dimensions no prompt was
    told about yet; returns them. A call nested in another (a judge, a guard model, a
    ``journal=False`` call) is not the agent: its prompt gets no note, which waits for the
    agent's next call."""
    if call.kind != "model" or call.request is None or call.scratch.get("nested"):
        return []
    told = [d for d in crossed(row, soft, elapsed, row.noted) if await _won(store, row, d)]
    if not told:
        return told
    text = (
        f"Budget notice: {describe(row, told, elapsed)} of this task's budget is spent. "
        "Wrap up now: finish with what you have, and make only the calls you cannot do "
        "without; the run stops when a limit is reached."
    )
    msgs = list(call.request.messages)
    lead = 0
    while lead < len(msgs) and msgs[lead].role == "system":
        lead += 1
    msgs.insert(lead, Message(role="system", content=text))
    call.request = call.request.model_copy(update={"messages": tuple(msgs)})
    return told


async def _won(store: BudgetStore, row: Ledger, dim: str) -> bool:
    return await store.mark_ledger(row.key, "noted", dim)
