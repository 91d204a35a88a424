"""A clock tests move by hand (lease expiry, timers, purge cut-offs)."""

from __future__ import annotations


class FakeClock:
    """Implements ``tether.core.clock.Clock``; time stands still until advanced."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward (never backward); returns the new time."""
        if seconds < 0:
            raise ValueError("a FakeClock only moves forward; use set() to jump to a time")
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        self._now = float(when)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
