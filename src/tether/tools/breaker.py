"""The tool executor's circuit breaker: the shared core breaker, raising CircuitOpenError, and
its view of one attempt (``Trial``)."""

from __future__ import annotations

from tether.core.breaker import BreakerPolicy, BreakerState
from tether.core.breaker import CircuitBreaker as _CoreBreaker
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import (
    CircuitOpenError,
    PolicyViolationError,
    ToolArgumentsError,
    ToolDisabledError,
    ToolError,
)

__all__ = ["BreakerState", "CircuitBreaker", "Trial", "counts_against_health"]


class CircuitBreaker(_CoreBreaker):
    """One per tool; refusals raise :class:`CircuitOpenError`."""

    def __init__(self, name: str, policy: BreakerPolicy, clock: Clock = SYSTEM_CLOCK) -> None:
        def reject(message: str, retry_in: float) -> Exception:
            return CircuitOpenError(message, tool=name, retry_in=retry_in)

        super().__init__(name, policy, clock, reject=reject, kind="tool")


class Trial:
    """The breaker's view of one attempt: when the breaker let it through as a half-open trial
    and it ends with neither a success nor a failure that counts (cancelled, refused by the rate
    limiter, an error that says nothing of the tool's health), its slot is given back."""

    __slots__ = ("breaker", "settled", "trial")

    def __init__(self, breaker: CircuitBreaker | None) -> None:
        self.breaker = breaker
        self.settled = False
        self.trial = False
        if breaker is not None:
            breaker.before_call()
            self.trial = breaker.state is BreakerState.HALF_OPEN

    def success(self) -> None:
        if self.breaker is not None:
            self.breaker.success()
        self.settled = True

    def failure(self) -> None:
        if self.breaker is not None:
            self.breaker.failure()
        self.settled = True

    def release(self) -> None:
        if self.breaker is not None and self.trial and not self.settled:
            self.breaker.release()
        self.settled = True


def counts_against_health(exc: ToolError) -> bool:
    """Failures that say the tool is unhealthy; a refused or invalid call says nothing of it."""
    return not isinstance(
        exc, PolicyViolationError | ToolArgumentsError | ToolDisabledError | CircuitOpenError
    )
