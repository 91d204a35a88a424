"""The knobs of a tool contract: scope, retry per error class, rate limit, circuit breaker."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

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
    at least ``Retry-After``) are retried with jittered exponential backoff; argument validation
    errors and policy violations never are (the first goes back to the planner)."""

    max_attempts: int = 3
    initial_interval: float = 0.1
    backoff_factor: float = 2.0
    max_interval: float = 10.0
    jitter: bool = True
    on_timeout: bool = True
    on_transient: bool = True
    on_rate_limit: bool = True
    max_retry_after: float = 60.0
    """A Retry-After longer than this is not waited out: the error is raised instead."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("ToolRetry.max_attempts must be >= 1")
        if min(self.initial_interval, self.max_interval, self.max_retry_after) < 0:
            raise ConfigurationError("ToolRetry intervals must be >= 0")

    def retry_delay(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.max_attempts or not isinstance(exc, ToolError) or not exc.retryable:
            return None
        base = min(self.max_interval, self.initial_interval * self.backoff_factor ** (attempt - 1))
        backoff = base * (0.5 + random.random()) if self.jitter else base
        if isinstance(exc, ToolRateLimitedError):
            if not self.on_rate_limit:
                return None
            if exc.retry_after is not None:
                if exc.retry_after > self.max_retry_after:
                    return None
                return max(exc.retry_after, 0.0)
            return backoff
        if isinstance(exc, ToolTimeoutError):
            return backoff if self.on_timeout else None
        if isinstance(exc, ToolTransientError):
            return backoff if self.on_transient else None
        return backoff


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
        if self.rate <= 0 or self.burst < 1 or self.max_wait < 0:
            raise ConfigurationError("RateLimit needs rate > 0, burst >= 1 and max_wait >= 0")
