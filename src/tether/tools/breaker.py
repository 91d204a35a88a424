"""Circuit breaker per tool: closed → open after N consecutive failures → half-open trial."""

from __future__ import annotations

from enum import StrEnum

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import CircuitOpenError
from tether.tools.policies import BreakerPolicy


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts only failures that say the tool is unhealthy (the executor decides which)."""

    def __init__(self, name: str, policy: BreakerPolicy, clock: Clock = SYSTEM_CLOCK) -> None:
        self.name = name
        self.policy = policy
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._trials = 0
        self.transitions: list[tuple[BreakerState, BreakerState]] = []

    def _move(self, to: BreakerState) -> None:
        if to is not self.state:
            self.transitions.append((self.state, to))
            self.state = to

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go through now."""
        if self.state is BreakerState.OPEN:
            waited = self.clock.now() - self.opened_at
            if waited < self.policy.reset_timeout:
                raise CircuitOpenError(
                    f"circuit for tool {self.name!r} is open after {self.failures} consecutive "
                    f"failures; retry in {self.policy.reset_timeout - waited:.1f}s",
                    tool=self.name,
                    retry_in=self.policy.reset_timeout - waited,
                )
            self._move(BreakerState.HALF_OPEN)
            self._trials = 0
        if self.state is BreakerState.HALF_OPEN:
            if self._trials >= self.policy.half_open_calls:
                raise CircuitOpenError(
                    f"circuit for tool {self.name!r} is half-open and its trial call is in flight",
                    tool=self.name,
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
