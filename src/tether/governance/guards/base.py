"""What the loop guards share: how a trip is reported, where a run's raised limits live, and how
a resume value raising one is checked.

A trip raises ``EscalationSignal(kind="loop_guard", guard=...)``: the run parks ESCALATED with
its state intact. Each trip first puts a ``loop_guard_tripped`` event on the run's stream and
records a ``loop_guard.trip`` audit entry; its reason says which guard, what it saw and how to
continue. A human continues the run with ``Runtime.resume(run_id, {"raise_limit": {guard: n}})``
(the guard's own check of ``n`` says what it takes) or cancels it.

Raised limits live in the run's metadata under ``LIMITS_KEY`` (``{"stutter": 6, ...}``),
written by the resume's commit (``GovernancePart.on_resume``) and read by the guards of every
later execution of the run. ``start(..., metadata={"loop_guards": {...}})`` sets them for one
run from the start.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Generic, NoReturn, TypeVar

from tether.core.errors import EscalationSignal, InvalidInputError
from tether.governance.scope import RunScope

KIND = "loop_guard"
"""The ``escalation["kind"]`` of every loop guard trip."""
LIMITS_KEY = "loop_guards"
"""Run metadata: the limits a resume raised (or ``start`` set) for this run, per guard."""
TRIPPED_EVENT = "loop_guard_tripped"
WARNING_EVENT = "loop_warning"


async def trip(scope: RunScope, guard: str, reason: str, **details: Any) -> NoReturn:
    """Report a trip (event and audit entry) and stop the run: ESCALATED, state intact."""
    data = {"guard": guard, "reason": reason, **details}
    scope.emit(TRIPPED_EVENT, data)
    await scope.audit(f"{KIND}.trip", data)
    raise EscalationSignal(reason, kind=KIND, guard=guard, **details)


def run_limit(run: Any, guard: str, default: float) -> float:
    """The limit of ``guard`` for ``run``: raised in its metadata, else the configured one."""
    limits = getattr(run, "metadata", {}).get(LIMITS_KEY)
    if isinstance(limits, Mapping):
        value = limits.get(guard)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    return default


def tripped(escalation: Mapping[str, Any], guard: str) -> Mapping[str, Any] | None:
    """The trip's details when ``escalation`` is a trip of ``guard``, else None."""
    details = escalation.get("details")
    if escalation.get("kind") != KIND or not isinstance(details, Mapping):
        return None
    return details if details.get("guard") == guard else None


def raised_limit(value: Any, guard: str, *, example: str) -> Any:
    """The new limit a resume value grants ``guard``, None when it grants none (a plain
    resume), or ``InvalidInputError`` saying what a resume of this trip takes."""
    how = f"resume with {{'raise_limit': {{'{guard}': {example}}}}}"
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"raise_limit"}:
        raise InvalidInputError(
            f"this run was stopped by the {guard!r} loop guard; {how}, or cancel it (got {value!r})"
        )
    raise_ = value["raise_limit"]
    if not isinstance(raise_, Mapping) or set(raise_) != {guard}:
        raise InvalidInputError(
            f"raise_limit must name exactly the guard that tripped ({guard!r}): {how} "
            f"(got {raise_!r})"
        )
    return raise_[guard]


def with_limit(run: Any, guard: str, limit: float) -> dict[str, Any]:
    """The run metadata that records ``limit`` for ``guard`` (other guards' limits kept)."""
    limits = getattr(run, "metadata", {}).get(LIMITS_KEY)
    kept = dict(limits) if isinstance(limits, Mapping) else {}
    return {LIMITS_KEY: {**kept, guard: limit}}


K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A small LRU map: what a guard remembers per run between calls in this process (it is
    one object per workflow, shared by every run of it)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)
