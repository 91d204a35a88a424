"""Interrupt timeouts: ``interrupt(payload, timeout=7200, on_timeout="escalate_to_manager")``.

The interrupt parks the run like any other and adds a timer row (``store.timers``) due
``timeout`` seconds later; a runtime with ``recover=True`` fires it (``graph.timers``) with
``interrupt_timeout``, which answers the interrupt with a timeout marker, as an ordinary resume
with ``execute=False`` (actor ``timer``): the node re-runs, and its ``interrupt`` call either
routes to ``on_timeout`` (that node only, instead of the node's edges: a ``Detour``) or returns
``default``. An interrupt answered in time has its timer deleted; if the timer fires anyway (a
race), the resume is refused as stale and the timer is dropped; an answer that comes after the
timeout fired is refused the same way (the run no longer waits for that interrupt).

With several interrupts pending in one step, the timeout answers them once every one of them
has timed out (each has its own timer; the last one to fire answers all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from tether.core.errors import (
    ConfigurationError,
    Interrupt,
    InvalidInputError,
    InvalidRouteError,
    RunNotFoundError,
    RunStateError,
    TetherSignal,
)
from tether.core.lifecycle import RunStatus
from tether.graph.sleep import check_deadline, check_time
from tether.graph.types import END
from tether.store.timers import Timer, TimerStore

if TYPE_CHECKING:
    from tether.graph.host import RunHost
    from tether.store.protocol import RunStore
    from tether.store.types import RunRecord

log = logging.getLogger("tether.timers")

INTERRUPT_TIMEOUT = "interrupt_timeout"
TIMEOUT_KEY = "__tether_timeout__"
"""The answer a timed-out interrupt gets: ``{TIMEOUT_KEY: {"at": ..., "timer": ...}}``."""
NO_DEFAULT: Any = object()


class TimedInterrupt(Interrupt):
    """An interrupt with a deadline: ``interrupt(..., timeout=...)``."""

    def __init__(self, payload: Any, index: int, timeout: float, on_timeout: str | None) -> None:
        super().__init__(payload, index)
        self.timeout = timeout
        self.on_timeout = on_timeout


class TimeoutRoute(TetherSignal):
    """A timed-out interrupt's ``on_timeout``: the task goes to that node only."""

    def __init__(self, node: str) -> None:
        super().__init__(node)
        self.node = node


def make_interrupt(
    payload: Any, index: int, timeout: float | None, on_timeout: str | None, default: Any
) -> Interrupt:
    """The signal ``interrupt()`` raises (arguments checked)."""
    if timeout is None:
        if on_timeout is not None or default is not NO_DEFAULT:
            raise InvalidInputError("interrupt(): on_timeout and default need a timeout")
        return Interrupt(payload, index)
    seconds = check_time(timeout, "interrupt(timeout=...)")
    check_deadline(time.time() + seconds, "now + interrupt(timeout=...)", timeout)  # not 1e300
    if seconds <= 0:
        raise InvalidInputError(f"interrupt(timeout=...) must be > 0 seconds, got {timeout!r}")
    if (on_timeout is None) == (default is NO_DEFAULT):
        raise InvalidInputError(
            "interrupt(timeout=...) needs exactly one of on_timeout='<node>' (the node the run "
            "goes to when nobody answers in time) or default=<value> (what interrupt() returns)"
        )
    if on_timeout is not None and not isinstance(on_timeout, str):
        raise InvalidInputError(f"on_timeout must be a node name, got {on_timeout!r}")
    return TimedInterrupt(payload, index, seconds, on_timeout)


def unknown_on_timeout(intr: Interrupt, node: str, nodes: Collection[str]) -> Exception | None:
    """The error of a timed interrupt whose ``on_timeout`` names no node of the graph, found
    when the node parks rather than when the timer fires, hours later; None when it is fine."""
    target = intr.on_timeout if isinstance(intr, TimedInterrupt) else None
    if target is None or target == END or target in nodes:
        return None
    return InvalidRouteError(
        f"node {node!r}: interrupt(on_timeout={target!r}) names no node of the graph; known "
        f"nodes: {sorted(nodes)} (or END)"
    )


def is_timeout_answer(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and TIMEOUT_KEY in value


def timed_out(on_timeout: str | None, default: Any) -> Any:
    """What ``interrupt()`` does when its answer is the timeout marker."""
    if on_timeout is not None:
        raise TimeoutRoute(on_timeout)
    return None if default is NO_DEFAULT else default


async def add_interrupt_timer(
    rt: RunHost, run_id: str, item: dict[str, Any], intr: TimedInterrupt
) -> None:
    """Add the timer of a timed interrupt before the run parks, and note its deadline in the
    interrupt ``item`` (``timeout_at``, ``on_timeout``). The timer's id is the interrupt's:
    after a crash re-ran the step, adding it again keeps the first deadline."""
    store = timer_store(rt)
    now = rt.clock.now()
    timer = Timer(
        f"{run_id}/{item['id']}",
        run_id,
        INTERRUPT_TIMEOUT,
        now + intr.timeout,
        {"interrupt_id": item["id"], "on_timeout": intr.on_timeout},
        now,
    )
    if not await store.add_timer(timer):
        for old in await store.list_timers(run_id):
            if old.timer_id == timer.timer_id:
                timer = old
    item["timeout_at"] = timer.fire_at
    item["on_timeout"] = intr.on_timeout


def timer_store(rt: RunHost) -> TimerStore:
    store = rt.store
    if not isinstance(store, TimerStore):
        raise ConfigurationError(
            f"{type(store).__name__} keeps no timers; interrupt(timeout=...) and schedules need "
            "the memory, SQLite or PostgreSQL store"
        )
    return store


async def interrupt_timeout(rt: RunHost, timer: Timer) -> None:
    """Answer the timed-out interrupt(s) with the timeout marker; a no-op once answered."""
    iid = timer.payload["interrupt_id"]
    assert timer.run_id is not None
    try:
        run = await rt.store.get_run(timer.run_id)
    except RunNotFoundError:
        return
    esc = run.escalation or {}
    if run.status is not RunStatus.ESCALATED or esc.get("kind") != "interrupt":
        return
    pending = list(esc.get("interrupts", []))
    if iid not in [i["id"] for i in pending]:
        return  # answered in time (and waiting on another interrupt now)
    now = rt.clock.now()
    if any(i.get("timeout_at") is None or i["timeout_at"] > now for i in pending):
        return  # another pending interrupt has no timeout or is not due: its timer answers
    marker = {TIMEOUT_KEY: {"at": now, "timer": timer.timer_id}}
    try:
        await rt.resume(
            run.run_id,
            answers={i["id"]: marker for i in pending},
            actor="timer",
            wait=False,
            execute=False,
        )
    except (RunStateError, InvalidInputError) as exc:
        fresh = await rt.store.get_run(run.run_id)
        still = (fresh.escalation or {}).get("interrupts", [])
        if fresh.status is RunStatus.ESCALATED and iid in [i["id"] for i in still]:
            raise  # being resumed right now: the timer is claimed again later
        log.info("timer %s: run %s was answered meanwhile (%s)", timer.timer_id, run.run_id, exc)


def has_interrupt_timers(run: RunRecord) -> bool:
    """Whether the run waits for an interrupt that has a timeout (a resume then cancels it)."""
    esc = run.escalation or {}
    return esc.get("kind") == "interrupt" and any(
        i.get("timeout_at") is not None for i in esc.get("interrupts", [])
    )


async def cancel_interrupt_timers(store: RunStore, run_id: str) -> None:
    """Drop a resumed run's interrupt timeouts; a failure leaves timers that find it stale."""
    if not isinstance(store, TimerStore):
        return
    try:
        await store.cancel_timers(run_id, INTERRUPT_TIMEOUT)
    except Exception as exc:
        log.warning(
            "run %s: its interrupt timers stay (they will find it answered): %s", run_id, exc
        )
