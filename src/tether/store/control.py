"""The control plane a store shares between workers: token buckets and flags.

Rate limits that hold across every worker, and kill switches that take effect everywhere within
a second, both need state that all workers see: it lives in the same store as the runs.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ControlStore(Protocol):
    async def take_tokens(self, bucket: str, rate: float, burst: float, n: float = 1.0) -> float:
        """Token bucket ``bucket`` refilling at ``rate`` tokens/s up to ``burst`` (a new bucket
        starts full). If ``n`` tokens are there, take them and return 0.0; otherwise take
        nothing and return the seconds until ``n`` will be there. Atomic across workers."""
        ...

    async def set_flag(self, key: str, value: Any) -> None:
        """Set a JSON-like flag; ``None`` deletes it."""
        ...

    async def get_flags(self, prefix: str = "") -> dict[str, Any]:
        """Every flag whose key starts with ``prefix``."""
        ...


def check_take(rate: float, burst: float, n: float) -> None:
    """The arguments every backend refuses, before touching the bucket."""
    if rate <= 0 or burst <= 0 or n <= 0 or n > burst:
        raise ValueError("take_tokens needs rate > 0, burst > 0 and 0 < n <= burst")


def refill(tokens: float, updated_at: float, now: float, rate: float, burst: float) -> float:
    """Tokens in a bucket at ``now`` (shared by every backend; pure)."""
    return min(burst, tokens + max(0.0, now - updated_at) * rate)


def take(tokens: float, n: float, rate: float) -> tuple[float, float]:
    """(tokens left, seconds to wait): take ``n`` if there, else take nothing."""
    if tokens + 1e-9 >= n:
        return max(0.0, tokens - n), 0.0
    return tokens, (n - tokens) / rate
