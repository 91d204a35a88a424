"""The tool executor's circuit breaker: the shared core breaker, raising CircuitOpenError."""

from __future__ import annotations

from tether.core.breaker import BreakerPolicy, BreakerState
from tether.core.breaker import CircuitBreaker as _CoreBreaker
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import CircuitOpenError

__all__ = ["BreakerState", "CircuitBreaker"]


class CircuitBreaker(_CoreBreaker):
    """One per tool; refusals raise :class:`CircuitOpenError`."""

    def __init__(self, name: str, policy: BreakerPolicy, clock: Clock = SYSTEM_CLOCK) -> None:
        def reject(message: str, retry_in: float) -> Exception:
            return CircuitOpenError(message, tool=name, retry_in=retry_in)

        super().__init__(name, policy, clock, reject=reject, kind="tool")
