"""Cron schedules: ``await runtime.schedule("0 * * * *", workflow, input, name="hourly")``.

A schedule is a row in the store (``store.timers.Schedule``). Every runtime with
``recover=True`` looks for due schedules each ``poll_interval``; a due schedule starts one run
per slot, enqueued (``start(..., execute=False)``) under the idempotency key
``cron:{name}:{slot}``, so however many runtimes race for a slot, one run starts; then the
schedule's ``next_fire_at`` moves on with a compare-and-set. After downtime that spanned
several slots, only the latest missed slot fires (once), then the schedule continues from the
next slot after now.

Each run goes on the schedule's ``queue`` with its ``priority`` and ``tenant`` (checked as
``start`` checks them), so a tenant's nightly job counts against that tenant's limits and
quotas and is served by the workers of that queue.

The input is checked against the workflow when scheduling, and a name is one schedule's:
scheduling another workflow under a name in use is refused. A slot whose run cannot start
because the stored input no longer fits (the workflow's state changed in a deploy since) is
skipped with one logged error, and the schedule tries again at its next slot; a slot whose
queue is full (``QueueFullError``, the queue's depth limit) waits for room, tried again at each
poll. Neither keeps the other schedules from firing.

Cron expressions read as a wall clock in the schedule's ``timezone`` (an IANA name, default
UTC), each wall-clock slot firing once across daylight-saving changes; see
``tether.graph.cron_slots``.

A clock that ran ahead and was set back (a day's step, then NTP): while ahead a schedule fires
its latest slot once (as after downtime); once the clock is back, the first runtime to look (or
a runtime starting) moves its next slot back to the next one after now, so no day of slots goes
missing, and the slot fired early is not fired again when its time comes.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tether.core.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    QueueFullError,
    UserError,
)
from tether.graph.cron_slots import check_cron, check_timezone, latest_slot, next_slot
from tether.graph.queueing import placement
from tether.graph.state import check_text
from tether.graph.timers import timer_store
from tether.store.timers import Schedule, TimerStore, schedule_taken

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.graph.host import RunHost

log = logging.getLogger("tether.schedules")


async def put_schedule(
    rt: RunHost,
    cron: str,
    wf: Workflow,
    input: Any,
    *,
    name: str | None,
    enabled: bool,
    queue: str = "default",
    priority: int = 0,
    tenant: str | None = None,
    timezone: str = "UTC",
) -> Schedule:
    name = wf.name if name is None else name
    if not isinstance(name, str) or not name:
        raise InvalidInputError("a schedule's name must be a non-empty string")
    check_text(name=name)
    cron = check_cron(cron)  # '@hourly' kept as '0 * * * *': rescheduled either way, one slot
    check_timezone(timezone)
    placement(queue, priority, tenant, None, 0.0)  # the same checks as start()'s
    wf.schema.initial_state(input)  # what start() would refuse at every slot, refused now
    store = timer_store(rt)
    held = await store.get_schedule(name)
    if held is not None and held.workflow != wf.name:  # a name used twice, not a new version
        raise schedule_taken(name, held.workflow, wf.name)  # (the store refuses a race too)
    now = rt.clock.now()
    row = Schedule(
        name,
        cron,
        wf.name,
        input,
        next_slot(cron, now, timezone),
        enabled,
        queue=queue,
        priority=priority,
        tenant=tenant,
        timezone=timezone,
    )
    return await store.put_schedule(row)


async def remove_schedule(rt: RunHost, name: str) -> bool:
    """Delete the schedule ``name``; False when there is none. Runs it started stay."""
    return await timer_store(rt).delete_schedule(name)


_FULL: dict[str, float] = {}
"""The slot each schedule last waited on a full queue for (its warning is logged once)."""
_BROKEN: dict[tuple[int, str], tuple[str, str]] = {}
"""The timetable of each schedule (of a store) whose slots could not be computed: its error is
logged once."""


CLOCK_BACK = 1.0
"""Seconds the clock must go back between two looks for the schedules to be looked over."""
_NOW: dict[int, float] = {}
"""The time each store's schedules were last looked at (by ``id(store)``)."""


async def _rewind(
    store: TimerStore, known: dict[str, Workflow], now: float, seen: float | None
) -> None:
    """The clock went back (or this is the first look): a schedule whose next slot is past
    the next one after now got it while the clock ran ahead, and would fire nothing until
    the clock reached it again (a day's step: a day of slots); it is moved back to the next
    slot after now. A slot it fired early is not fired twice: its run exists (its key)."""
    for s in await store.list_schedules():
        if s.workflow not in known or not s.enabled:
            continue
        try:
            due = next_slot(s.cron, now, s.timezone)
        except Exception:  # no next slot: fire_schedules says so
            continue
        if s.next_fire_at <= due:
            continue
        if s.last_slot is not None:
            moved = await store.advance_schedule(s.name, s.next_fire_at, due, s.last_slot)
        else:  # never fired (scheduled while the clock ran ahead)
            held = replace(s, next_fire_at=due)
            moved = (await store.put_schedule(held)).next_fire_at == due
        if moved:
            log.warning(
                "schedule %s: its next slot %s was set while the clock ran ahead (%s); the "
                "next one after now, %s, is next again",
                s.name,
                s.next_fire_at,
                "it went back since" if seen is None else f"it went back {seen - now:.0f} s",
                due,
            )


def slot_key(name: str, slot: float) -> str:
    return f"cron:{name}:{slot:.0f}"


async def fire_schedules(rt: RunHost, known: dict[str, Workflow]) -> int:
    """Start the run of each due schedule whose workflow is in ``known``. Returns the slots
    fired here (a slot another runtime fired first is not counted)."""
    store = rt.store
    if not isinstance(store, TimerStore):
        return 0
    now = rt.clock.now()
    seen = _NOW.get(id(store))
    _NOW[id(store)] = now
    if seen is None or now < seen - CLOCK_BACK:
        await _rewind(store, known, now, seen)
    fired = 0
    for s in await store.list_schedules(due_at=now):
        wf = known.get(s.workflow)
        if wf is None:
            continue  # a runtime that knows the workflow fires it
        try:
            slot = max(latest_slot(s.cron, now, s.timezone), s.next_fire_at)
            following = next_slot(s.cron, now, s.timezone)
        except Exception as exc:  # a stored timetable with no slot to compute: this one waits
            if _BROKEN.get((id(store), s.name)) != (s.cron, s.timezone):
                _BROKEN[(id(store), s.name)] = (s.cron, s.timezone)
                log.error(
                    "schedule %s: %r in %s has no next slot (%s); it fires no more until "
                    "scheduled again with another expression",
                    s.name,
                    s.cron,
                    s.timezone,
                    exc,
                )
            continue
        created = False
        try:
            handle = await rt.start(
                wf,
                s.input,
                idempotency_key=slot_key(s.name, slot),
                execute=False,
                queue=s.queue,
                priority=s.priority,
                tenant=s.tenant,
                metadata={"schedule": s.name, "slot": slot},
                actor=f"schedule:{s.name}",
            )
            created = handle.created
        except IdempotencyConflictError:  # the input changed since this slot fired: it did
            pass
        except QueueFullError as exc:  # backpressure: this slot waits for room, others go on
            if _FULL.get(s.name) != slot:
                _FULL[s.name] = slot
                log.warning("schedule %s: slot %s waits for room: %s", s.name, slot, exc)
            continue
        except UserError as exc:  # the stored input no longer fits the workflow
            log.error(
                "schedule %s: slot %s skipped, its run cannot start: %s; schedule it again "
                "with input that fits %s",
                s.name,
                slot,
                exc,
                s.workflow,
            )
        await store.advance_schedule(s.name, s.next_fire_at, following, slot)
        if created:
            fired += 1
            log.info("schedule %s: slot %s started run %s", s.name, slot, handle.run_id)
    return fired
