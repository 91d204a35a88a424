"""Retention: how much history a runtime keeps, applied automatically."""

from __future__ import annotations

from dataclasses import dataclass

from tether.core.errors import ConfigurationError
from tether.core.finite import check_number


@dataclass(frozen=True, slots=True)
class Retention:
    """``keep_last``: once a run finishes, keep only its last N checkpoints (the oldest kept one
    becomes a snapshot, so every kept step still reads exactly; a subgraph's child run is pruned
    with its parent, once that is COMPLETED or CANCELLED). ``finished_ttl``: delete runs
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
        if self.finished_ttl is not None:
            check_number("Retention.finished_ttl", self.finished_ttl, above=True, unit=_SECONDS)
        check_number("Retention.sweep_interval", self.sweep_interval, above=True, unit=_SECONDS)


_SECONDS = " of seconds"
