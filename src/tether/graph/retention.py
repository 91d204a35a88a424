"""Retention: how much history a runtime keeps, applied automatically."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tether.core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Retention:
    """``keep_last``: once a run finishes, keep only its last N checkpoints (the oldest kept one
    becomes a snapshot, so every kept step still reads exactly). ``finished_ttl``: delete runs
    that finished (COMPLETED, FAILED, CANCELLED) more than this many seconds ago, swept every
    ``sweep_interval`` seconds. Runs that are active or parked are never touched."""

    keep_last: int | None = None
    finished_ttl: float | None = None
    sweep_interval: float = 60.0

    def __post_init__(self) -> None:
        if self.keep_last is not None and (
            isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int)
        ):
            raise ConfigurationError(f"Retention.keep_last must be an int, got {self.keep_last!r}")
        if self.keep_last is not None and self.keep_last < 1:
            raise ConfigurationError("Retention.keep_last must be >= 1 (or None to keep all)")
        # NaN compares false with everything: a NaN ttl would purge nothing, silently
        if self.finished_ttl is not None and not _positive(self.finished_ttl):
            raise ConfigurationError(
                f"Retention.finished_ttl must be a finite number of seconds > 0 (or None), "
                f"got {self.finished_ttl!r}"
            )
        if not _positive(self.sweep_interval):
            raise ConfigurationError(
                "Retention.sweep_interval must be a finite number of seconds > 0, got "
                f"{self.sweep_interval!r}"
            )


def _positive(value: Any) -> bool:
    """A finite number of seconds above zero (bools are not numbers here)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )
