"""A circuit breaker: closed → open after N consecutive failures → half-open trial → closed.

One implementation for every plane: the tool executor keeps one per tool, the model plane one
per provider. What a rejection raises is the owner's choice (``reject``), so each plane keeps its
own error class.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Open after ``failure_threshold`` consecutive failures; after ``reset_timeout`` seconds let
    ``half_open_calls`` trial calls through; a success closes it, a failure opens it again."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    half_open_calls: int = 1

    def __post_init__(self) -> None:
        counts = (self.failure_threshold, self.half_open_calls)
        if (
            any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts)
            or isinstance(self.reset_timeout, bool)
            or not isinstance(self.reset_timeout, int | float)
            or not math.isfinite(self.reset_timeout)  # NaN: the breaker would never close
            or self.reset_timeout < 0
        ):
            raise ConfigurationError(
                "BreakerPolicy needs ints failure_threshold >= 1 and half_open_calls >= 1 and a "
                f"finite reset_timeout >= 0, got {self}"
            )


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Reject = Callable[[str, float], Exception]
"""Builds the error for a refused call from (reason, seconds until a trial is allowed)."""


class CircuitBreaker:
    """Counts only the failures its owner reports: the owner decides which say 'unhealthy'."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Clock = SYSTEM_CLOCK,
        *,
        reject: Reject,
        kind: str = "tool",
    ) -> None:
        self.name = name
        self.policy = policy
        self.clock = clock
        self.kind = kind
        self._reject = reject
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._trials = 0
        self.transitions: list[tuple[BreakerState, BreakerState]] = []
        _LIVE.add(self)

    def _move(self, to: BreakerState) -> None:
        if to is not self.state:
            self.transitions.append((self.state, to))
            self.state = to

    def before_call(self) -> None:
        """Raise the owner's rejection error unless a call may go through now."""
        if self.state is BreakerState.OPEN:
            waited = self.clock.now() - self.opened_at
            if waited < self.policy.reset_timeout:
                left = self.policy.reset_timeout - waited
                raise self._reject(
                    f"circuit for {self.kind} {self.name!r} is open after {self.failures} "
                    f"consecutive failures; retry in {left:.1f}s",
                    left,
                )
            self._move(BreakerState.HALF_OPEN)
            self._trials = 0
        if self.state is BreakerState.HALF_OPEN:
            if self._trials >= self.policy.half_open_calls:
                raise self._reject(
                    f"circuit for {self.kind} {self.name!r} is half-open and its trial call is "
                    "in flight",
                    0.0,
                )
            self._trials += 1

    def success(self) -> None:
        self.failures = 0
        self._move(BreakerState.CLOSED)

    def failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.policy.failure_threshold:
            self.opened_at = self.clock.now()
            self._move(BreakerState.OPEN)

    def release(self) -> None:
        """A half-open trial ended without a verdict (cancelled): let another one through."""
        if self.state is BreakerState.HALF_OPEN and self._trials > 0:
            self._trials -= 1


_LIVE: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()


def live_breakers() -> list[CircuitBreaker]:
    """Every circuit breaker of this process still in use (for metrics)."""
    return list(_LIVE)
