"""Durable timers and cron schedules: rows in the store, fired by whichever runtime is alive.

A **timer** is a row ``(timer_id, run_id, kind, fire_at, payload)``. Any runtime with
``recover=True`` claims due timers (``claim_due_timers``) under a short claim (``claimed_by``
until ``claim_expires_at``): two runtimes never hold one timer at once, and a runtime that dies
holding one lets it be claimed again when the claim expires. The claimer runs the handler
registered for the timer's kind, then ``finish_timer`` marks it fired (``fired_at``). Handlers
must tolerate running twice (a crash between the handler and ``finish_timer``): the interrupt
timeout handler does, because answering an interrupt that is no longer pending is refused.

A **schedule** is a row ``(name, cron, workflow, input, next_fire_at, enabled)``; each firing
advances ``next_fire_at`` with a compare-and-set (``advance_schedule``), and the run it starts
carries the idempotency key ``cron:{name}:{slot}``, so a slot starts one run however many
runtimes race for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tether.core.errors import InvalidInputError


@dataclass(slots=True)
class Timer:
    timer_id: str
    """Unique; adding a timer whose id exists changes nothing (re-adding is idempotent)."""
    run_id: str | None
    kind: str
    """Picks the handler (``tether.graph.timers``): ``interrupt_timeout``, ..."""
    fire_at: float
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    claimed_by: str | None = None
    claim_expires_at: float = 0.0
    fired_at: float | None = None
    """When a handler finished it; None while pending."""


@dataclass(slots=True)
class Schedule:
    name: str
    cron: str
    """A cron expression (in ``timezone``): 5 fields, or 6 with seconds last (``croniter``)."""
    workflow: str
    input: Any = None
    next_fire_at: float = 0.0
    enabled: bool = True
    last_slot: float | None = None
    """The slot that fired last (None: never fired)."""
    created_at: float = 0.0
    updated_at: float = 0.0
    queue: str = "default"
    """The queue its runs are enqueued on (schema v19)."""
    priority: int = 0
    """Their priority within the queue (higher first)."""
    tenant: str | None = None
    """Whose runs they are (per-tenant limits, quotas, kill switches; None: no tenant)."""
    timezone: str = "UTC"
    """The IANA time zone its expression's wall clock is read in (schema v20)."""


def schedule_taken(name: str, held_by: str, asked: str) -> InvalidInputError:
    """The error of scheduling workflow ``asked`` under a name another workflow holds."""
    return InvalidInputError(
        f"schedule {name!r} starts runs of workflow {held_by!r}; give the schedule of "
        f"{asked!r} another name, or remove that one first (runtime.unschedule({name!r}), "
        f"`tether schedules delete {name}`)"
    )


@runtime_checkable
class TimerStore(Protocol):
    # -- timers -----------------------------------------------------------------------------
    async def add_timer(self, timer: Timer) -> bool:
        """Insert ``timer`` unless its id exists. Returns whether it was inserted."""
        ...

    async def claim_due_timers(
        self,
        owner: str,
        ttl: float,
        *,
        kinds: Sequence[str],
        limit: int = 16,
        workflows: Sequence[str] | None = None,
    ) -> list[Timer]:
        """Atomically claim at most ``limit`` pending timers of ``kinds`` due now (``fire_at``
        at or before the store's clock) and not claimed by anyone (or whose claim expired):
        each is claimed by ``owner`` for ``ttl`` seconds. Earliest ``fire_at`` first.
        ``workflows`` (None: any): leave out the timers of runs of other workflows (a runtime
        that cannot continue a run leaves its timers to one that can); a timer of no run, or
        of a run that is gone, is claimed all the same."""
        ...

    async def finish_timer(self, timer_id: str, owner: str) -> bool:
        """Mark a timer ``owner`` claimed as fired. False when it is gone (cancelled) or
        another owner claimed it since."""
        ...

    async def release_timers(self, timer_ids: Sequence[str], owner: str) -> int:
        """Give back timers ``owner`` claimed and has not fired (a runtime shutting down with a
        claimed batch): each is claimable at once again instead of after its claim expires.
        Timers claimed by another owner since, or fired, are left alone. Returns how many."""
        ...

    async def cancel_timers(self, run_id: str, kind: str | None = None) -> int:
        """Delete the run's pending timers (of ``kind``, else all). Returns how many."""
        ...

    async def list_timers(self, run_id: str | None = None, *, pending: bool = True) -> list[Timer]:
        """Timers (of one run, or all), by ``fire_at``; ``pending`` only those not fired."""
        ...

    async def purge_timers(self, fired_before: float) -> int:
        """Delete the timers that fired before that time. Returns how many."""
        ...

    # -- schedules --------------------------------------------------------------------------
    async def put_schedule(self, schedule: Schedule) -> Schedule:
        """Create or update a schedule by name. An update that keeps the cron expression keeps
        the stored ``next_fire_at`` and ``last_slot`` (several runtimes registering the same
        schedule at start-up do not move it); a new expression takes ``schedule.next_fire_at``.
        Returns the schedule as stored."""
        ...

    async def get_schedule(self, name: str) -> Schedule | None: ...

    async def list_schedules(self, *, due_at: float | None = None) -> list[Schedule]:
        """Every schedule by name, or (``due_at``) the enabled ones due at that time."""
        ...

    async def advance_schedule(
        self, name: str, expected_next: float, next_fire_at: float, slot: float
    ) -> bool:
        """Compare-and-set: move ``next_fire_at`` from ``expected_next`` and record ``slot`` as
        fired. False when another runtime moved it first (or the schedule is gone)."""
        ...

    async def delete_schedule(self, name: str) -> bool: ...
