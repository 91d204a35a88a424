"""Budget ledgers: the rows budgets and quotas reserve from and settle into (schema v11).

A **ledger** is one row, named by its ``key`` (``tether.governance`` uses ``run:<root run>``
for a run tree's envelope and ``quota:<tenant>:<window>`` for a tenant's quota window), with,
per counted dimension (``COUNTERS``), a limit (None: unlimited), what was ``used`` (settled) and
what is ``reserved`` by calls in flight, plus two limits that are not counters
(``wall_seconds`` since ``started_at``, child-run ``depth``).

``reserve_ledger`` is one atomic conditional write: it adds the amounts to ``reserved`` only if,
for every dimension with a positive amount, ``used + reserved + amount <= limit``; otherwise it
changes nothing. Any number of workers reserving at once never reserve past a limit together, so
a limit is overrun only by what a call used beyond what it reserved. ``settle_ledger`` moves a
call's reservation into ``used`` with what it actually cost.

A settle can also ride on the next reservation or charge of the same ledger (``fold``: the
reservation to release and the use to add, written in the same statement, the condition checked
on the row as the settle leaves it): one write instead of two, as if the settle had been written
just before (``tether.governance.budget_pending`` defers settles that way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

COUNTERS = (
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost",
    "steps",
    "tool_calls",
    "model_calls",
    "child_runs",
    "runs",
)
"""Dimensions a ledger counts (reserved, then settled)."""
LIMITS = (*COUNTERS, "wall_seconds", "depth")
"""Every dimension a ledger can limit."""

Flag = Literal["evented", "noted"]
Fold = tuple[Mapping[str, float], Mapping[str, float]]
"""A settle written with another write: the reservation to release, the use to add."""


@dataclass(slots=True)
class Ledger:
    key: str
    limits: dict[str, float] = field(default_factory=dict)
    """Only the limited dimensions (of ``LIMITS``)."""
    used: dict[str, float] = field(default_factory=dict)
    """Every counter (``COUNTERS``), settled."""
    reserved: dict[str, float] = field(default_factory=dict)
    """Every counter, held by calls in flight."""
    started_at: float = 0.0
    """Wall-clock time counts from here (the root run's creation)."""
    evented: list[str] = field(default_factory=list)
    """Dimensions whose soft limit was announced (an event), each once."""
    noted: list[str] = field(default_factory=list)
    """Dimensions whose soft limit was put to the agent (a note in a prompt), each once."""
    created_at: float = 0.0
    updated_at: float = 0.0

    def spent(self, dim: str) -> float:
        """Used plus reserved."""
        return self.used.get(dim, 0.0) + self.reserved.get(dim, 0.0)

    def refusing(self, amounts: Mapping[str, float]) -> str | None:
        """The first dimension ``amounts`` would take past its limit (None: all fit)."""
        for dim in COUNTERS:
            amount, limit = amounts.get(dim, 0.0), self.limits.get(dim)
            if amount > 0 and limit is not None and self.spent(dim) + amount > limit:
                return dim
        return None


@runtime_checkable
class BudgetStore(Protocol):
    async def open_ledger(
        self, key: str, limits: Mapping[str, float], started_at: float
    ) -> tuple[Ledger, bool]:
        """The ledger ``key``, created with ``limits`` (of ``LIMITS``) and ``started_at`` if it
        does not exist (an existing one is left as it is). Returns it and whether it was
        created here (of several racing openers exactly one creates it)."""
        ...

    async def get_ledger(self, key: str) -> Ledger | None: ...

    async def reserve_ledger(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None = None
    ) -> Ledger | None:
        """Atomically add ``amounts`` (counters) to ``reserved`` if every dimension with a
        positive amount stays within its limit (see the module docstring); returns the ledger
        after it, or None (nothing changed) when one would not fit or the ledger is missing.
        ``fold``: a settle (``(reserved, used)``) applied first in the same write."""
        ...

    async def settle_ledger(
        self, key: str, reserved: Mapping[str, float], used: Mapping[str, float]
    ) -> Ledger | None:
        """Release ``reserved`` (never below 0) and add ``used``, in one write; returns the
        ledger after it (None: missing)."""
        ...

    async def charge_ledger(
        self, key: str, amounts: Mapping[str, float], fold: Fold | None = None
    ) -> Ledger | None:
        """``reserve_ledger`` straight into ``used``, for what is known exactly before it
        happens (a step, a tool call, a child run): one write instead of reserve + settle.
        Same condition and ``fold``; None (nothing changed) when one would not fit or the
        ledger is missing."""
        ...

    async def set_ledger_limits(
        self, key: str, limits: Mapping[str, float | None]
    ) -> Ledger | None:
        """Set the given limits (None: unlimited), leave the others; the ledger after it."""
        ...

    async def mark_ledger(self, key: str, flag: Flag, dimension: str) -> bool:
        """Add ``dimension`` to the ledger's ``flag`` list unless there; True only for the
        one caller that added it (announce a soft limit once, whoever crosses it)."""
        ...

    async def list_ledgers(self, prefix: str = "") -> list[Ledger]:
        """The ledgers whose key starts with ``prefix``, by key."""
        ...

    async def delete_ledgers(self, prefix: str, updated_before: float) -> int:
        """Delete the ledgers under ``prefix`` not written since ``updated_before`` (old
        quota windows). Returns how many."""
        ...


@runtime_checkable
class LedgerTake(Protocol):
    """A ``BudgetStore`` that can take from a ledger reading back only what a budget's call
    checks afterwards (its limits, the limited counters, the soft-limit marks): the same
    write, less to return and to build (``tether.governance.budget``)."""

    async def take_ledger(
        self,
        key: str,
        amounts: Mapping[str, float],
        fold: Fold | None = None,
        *,
        exact: bool = False,
        limited: tuple[str, ...] = (),
    ) -> Ledger | None:
        """``reserve_ledger`` (``charge_ledger`` when ``exact``) returning a lean ledger:
        ``limits`` holds every limited dimension, ``used`` and ``reserved`` at least every
        limited counter (an unlimited one may be missing: ``spent`` counts it 0), with
        ``started_at``, ``evented`` and ``noted``; ``created_at`` and ``updated_at`` may be 0.
        ``limited``: the dimensions (of ``LIMITS``) the caller expects limited, a hint only: a
        ledger limited in another dimension (a limit set since) comes back whole."""
        ...


@runtime_checkable
class LedgerCalm(Protocol):
    """A ``BudgetStore`` that can charge a ledger with nothing read back when the ledger, as
    the charge leaves it, needs no look (``tether.governance.budget``: no trip, no soft limit
    to announce): most charges of a budget whose limits are far from reached."""

    async def charge_calm(
        self, key: str, amounts: Mapping[str, float], *, limited: tuple[str, ...], soft: float
    ) -> bool:
        """``charge_ledger`` of ``amounts``, written only when, besides fitting, the ledger
        is limited in no dimension outside ``limited`` (counters only) and each of its limited
        counters is, after the charge, short of ``soft`` times its limit, or that limit is
        not positive, or it is marked ``evented``: True when written, False (nothing changed)
        otherwise, the caller then taking the usual way."""
        ...


@runtime_checkable
class LedgerFit(Protocol):
    """A ``BudgetStore`` that can take from a ledger without reading it back (a tenant quota's
    reservation needs to know only whether it fit): the same write, less to return."""

    async def fit_ledger(
        self,
        key: str,
        amounts: Mapping[str, float],
        fold: Fold | None = None,
        *,
        exact: bool = False,
    ) -> bool:
        """``reserve_ledger`` (``charge_ledger`` when ``exact``) without the ledger after it:
        True when it fit (written), False (nothing changed) when one would not fit or the
        ledger is missing."""
        ...
