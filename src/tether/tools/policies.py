"""The knobs of a tool contract: scope, retry per error class, rate limit, circuit breaker."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum

from tether.core.backoff import Backoff, Jitter, Random
from tether.core.breaker import BreakerPolicy
from tether.core.errors import (
    ConfigurationError,
    ToolError,
    ToolRateLimitedError,
    ToolTimeoutError,
    ToolTransientError,
)

__all__ = ["NO_TOOL_RETRY", "BreakerPolicy", "RateLimit", "Scope", "ToolRetry"]


class Scope(StrEnum):
    """What a tool may do to the world; policies and kill switches act per scope."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


@dataclass(frozen=True, slots=True)
class ToolRetry:
    """Retry per error class. Timeouts, transient failures (5xx) and rate limits (429, waiting
    exactly ``Retry-After``) are retried with jittered exponential backoff; argument validation
    errors and policy violations never are (the first goes back to the planner).

    The waits are ``tether.core.backoff.Backoff``'s, shared with the graph's ``RetryPolicy`` and
    the model plane's ``ModelRetry``: ``jitter=True`` (or ``"full"``) waits a uniform time in
    ``[0, base]``, ``"equal"`` in ``[base/2, base]``, ``False`` exactly ``base``."""

    max_attempts: int = 3
    initial_interval: float = 0.1
    backoff_factor: float = 2.0
    max_interval: float = 10.0
    jitter: Jitter = True
    on_timeout: bool = True
    on_transient: bool = True
    on_rate_limit: bool = True
    max_retry_after: float = 60.0
    """A Retry-After longer than this is not waited out: the error is raised instead."""
    schedule: Backoff = field(init=False, repr=False, compare=False)
    """The waits, computed by the one backoff rule every plane shares."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", Backoff.of(self, "ToolRetry"))

    def retry_delay(
        self, exc: BaseException, attempt: int, rand: Random = random.random
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if not isinstance(exc, ToolError) or not exc.retryable:
            return None
        if isinstance(exc, ToolRateLimitedError):
            if not self.on_rate_limit:
                return None
        elif isinstance(exc, ToolTimeoutError):
            if not self.on_timeout:
                return None
        elif isinstance(exc, ToolTransientError) and not self.on_transient:
            return None
        return self.schedule.delay(attempt, retry_after_of(exc), rand)


def retry_after_of(exc: BaseException) -> float | None:
    """The ``Retry-After`` a rate-limited tool asked for, if any."""
    return exc.retry_after if isinstance(exc, ToolRateLimitedError) else None


NO_TOOL_RETRY = ToolRetry(max_attempts=1)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` calls per second sustained, ``burst`` at once. The bucket lives in
    the store, so every worker sharing it shares the limit. ``per_tenant`` gives each tenant its
    own bucket. A call waits for a token up to ``max_wait`` seconds, then fails rate-limited."""

    rate: float
    burst: int = 1
    per_tenant: bool = False
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        numbers = (self.rate, self.burst, self.max_wait)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers) or not (
            math.isfinite(self.rate) and self.rate > 0 and self.burst >= 1
        ):
            raise ConfigurationError(
                f"RateLimit needs a finite rate > 0 and burst >= 1, got rate={self.rate!r}, "
                f"burst={self.burst!r}"
            )
        if math.isnan(self.max_wait) or self.max_wait < 0:  # inf: wait as long as it takes
            raise ConfigurationError(
                f"RateLimit needs max_wait >= 0 seconds (inf to wait as long as it takes), got "
                f"{self.max_wait!r}"
            )
