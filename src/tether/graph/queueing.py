"""Where a submitted run waits: its queue, priority, tenant and the time it may start.

Pure checks of what ``Runtime.start/submit(queue=, priority=, tenant=, delay=)`` and
``Runtime(queues=)`` are given, with errors that say how to fix them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypedDict

from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.tenants import check_tenant_name
from tether.graph.sleep import check_deadline

MAX_NAME = 200
"""Longest queue name accepted."""


class Placement(TypedDict):
    """The ``RunRecord`` fields of a run's place in the queues."""

    queue: str
    priority: int
    tenant: str | None
    available_at: float


def _name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise InvalidInputError(
            f"{kind} must be a non-empty string of at most {MAX_NAME} characters, got {value!r}"
        )
    if value.strip() != value:  # "billing " would be another queue, outside billing's limits
        raise InvalidInputError(
            f"a {kind} name has no space at either end, got {value!r} (did you mean "
            f"{value.strip()!r}?)"
        )
    if not value.isprintable():
        raise InvalidInputError(f"a {kind} name has no control characters, got {value!r}")
    return value


def check_queue_name(queue: object) -> str:
    """``queue`` if a run could be on it; InvalidInputError saying why not (a filter naming a
    queue no run can be on, ``""`` or ``"billing "``, would match nothing and say nothing)."""
    return _name("queue", queue)


def placement(
    queue: str, priority: int, tenant: str | None, delay: float | None, now: float
) -> Placement:
    """The queue fields of a new run, checked; ``delay`` seconds from ``now`` (None: at once)."""
    _name("queue", queue)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) >= 2**31:
        raise InvalidInputError(
            f"priority must be an int between -2**31 and 2**31 (higher runs first), got "
            f"{priority!r}"
        )
    if tenant is not None:
        check_tenant_name(tenant)
    available_at = 0.0
    if delay is not None:
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise InvalidInputError(f"delay must be a finite number of seconds >= 0, got {delay!r}")
        # a run due in 1e300 s waited forever, its wait() with it, as a sleep that long would
        available_at = check_deadline(now + float(delay), "now + delay", delay)
    return Placement(queue=queue, priority=priority, tenant=tenant, available_at=available_at)


def check_queues(queues: Iterable[str] | None) -> tuple[str, ...] | None:
    """``Runtime(queues=)``: the sorted set of queue names (None: every queue)."""
    if queues is None:
        return None
    if isinstance(queues, str):
        raise ConfigurationError(
            f"queues must be a list of queue names, got the string {queues!r}: "
            f"write queues=[{queues!r}]"
        )
    names = sorted({_queue_name(q) for q in queues})
    if not names:
        raise ConfigurationError(
            "queues=[] would serve no queue: pass the queue names to serve, or None for all"
        )
    return tuple(names)


def _queue_name(value: object) -> str:
    try:
        return _name("queue", value)
    except InvalidInputError as exc:
        raise ConfigurationError(str(exc)) from None
