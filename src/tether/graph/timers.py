"""Durable timers: rows in the store (``store.timers``), fired by whichever runtime is alive.

Every runtime with ``recover=True`` claims due timers every ``poll_interval`` (``fire_timers``;
each timer is claimed by one runtime at a time) and runs the handler registered for the
timer's kind (``HANDLERS``, ``register_handler``): ``interrupt_timeout`` (see
``graph.interrupt_timeout``), and later kinds such as approval deadlines. A handler that fails
leaves its timer to be claimed again once the claim expires (``CLAIM_TTL``); handlers must
tolerate running twice. ``take_back`` lets a runtime that claims nothing continue its own
sleeping run when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

from tether.core.errors import ConfigurationError
from tether.core.lifecycle import ACTIVE
from tether.graph.interrupt_timeout import INTERRUPT_TIMEOUT, interrupt_timeout
from tether.graph.interrupt_timeout import timer_store as timer_store
from tether.store.timers import Timer, TimerStore
from tether.store.transient import unavailable

if TYPE_CHECKING:
    from tether.graph.host import RunHost
    from tether.graph.runtime import Runtime

log = logging.getLogger("tether.timers")

CLAIM_TTL = 30.0
"""Seconds a runtime holds a claimed timer before another may claim it (its handler died)."""
Handler = Callable[["RunHost", Timer], Awaitable[None]]


HANDLERS: dict[str, Handler] = {INTERRUPT_TIMEOUT: interrupt_timeout}
"""Timer kind -> handler. ``register_handler`` adds kinds (approval deadlines, ...)."""


def register_handler(kind: str, handler: Handler) -> None:
    if not kind or not isinstance(kind, str):
        raise ConfigurationError("a timer kind must be a non-empty string")
    HANDLERS[kind] = handler


async def fire_timers(
    rt: RunHost, limit: int = 16, *, workflows: Collection[str] | None = None
) -> int:
    """Claim the due timers this runtime has handlers for and run them. Returns how many
    fired. A handler that fails leaves its timer to be claimed again after ``CLAIM_TTL``; a
    runtime stopped while firing (cancelled) gives the rest of its batch back at once.

    ``workflows``: the workflows this runtime knows; the timers of other workflows' runs are
    left to a runtime that knows theirs (workers split by workflow: one that could not
    continue the run claimed its interrupt timeout, failed, and held it ``CLAIM_TTL``, so a
    2 s timeout fired a minute late)."""
    store = rt.store
    if not isinstance(store, TimerStore):
        return 0
    fired = 0
    known = None if workflows is None else sorted(workflows)
    claimed = await store.claim_due_timers(
        rt.owner, CLAIM_TTL, kinds=sorted(HANDLERS), limit=limit, workflows=known
    )
    for i, timer in enumerate(claimed):
        try:
            await HANDLERS[timer.kind](rt, timer)
        except asyncio.CancelledError:
            # shutting down (or stopped): the batch is given back, this timer and those not
            # reached, so another runtime fires them now instead of after CLAIM_TTL
            await _give_back(store, rt.owner, [t.timer_id for t in claimed[i:]])
            raise
        except Exception as exc:
            if unavailable(exc):
                log.warning("timer %s: the store is unreachable; retried later", timer.timer_id)
            else:
                log.exception("timer %s (%s) failed; retried later", timer.timer_id, timer.kind)
            continue
        await store.finish_timer(timer.timer_id, rt.owner)
        fired += 1
    return fired


async def _give_back(store: TimerStore, owner: str, timer_ids: list[str]) -> None:
    """``release_timers``, best effort and briefly: a store that cannot answer now lets the
    claims expire instead (``CLAIM_TTL``), as before."""
    try:
        async with asyncio.timeout(RELEASE_WAIT):
            await store.release_timers(timer_ids, owner)
    except Exception as exc:
        log.warning("giving back %d claimed timer(s) failed (%s)", len(timer_ids), exc)


RELEASE_WAIT = 2.0
"""Seconds a stopping runtime waits to give its claimed timers back."""


async def timer_loop(rt: Runtime) -> None:
    """A runtime's background firing of due timers and cron slots, every ``poll_interval``."""
    while True:
        await asyncio.sleep(rt.poll_interval)
        try:
            await rt.fire_timers()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if unavailable(exc):
                log.warning("firing timers: the store is unreachable (%s)", exc)
            else:
                log.exception("firing timers failed")


async def take_back(rt: Runtime, run_id: str, until: float, *, delay: float | None = None) -> None:
    """Wait until ``until`` (the runtime's clock), then execute the parked run here if nobody
    holds it (``Runtime._take_back_when_due``). ``delay``: the seconds to wait, measured by the
    caller when the run parked (so the wait does not depend on when this task first runs)."""
    await asyncio.sleep(max(0.0, until - rt.clock.now() if delay is None else delay))
    if rt.runs_here(run_id):
        return
    lease = await rt.store.acquire_lease(run_id, rt.owner, rt.lease_ttl)
    if lease is None:
        return  # another runtime has it
    try:
        run = await rt.store.get_run(run_id)
        if run.status not in ACTIVE or run.available_at > rt.clock.now():
            # finished meanwhile, or ran elsewhere and parked again (a later sleep, a retry)
            await rt.store.release_lease(run_id, lease.token)
            return
        await rt.take_over(run, lease.token)
    except BaseException:
        with contextlib.suppress(Exception):
            await rt.store.release_lease(run_id, lease.token)
        raise
