"""The example's clock: the wall clock plus simulated hours, kept in a file so that every
process of the example (and the durable timers in its store) agrees on the time.

``--simulate-hours N`` moves it forward minute by minute, firing the durable timers that fall
due on the way, as a long-running worker would have fired them while nobody answered.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol

from tether.core.errors import InvalidInputError


class MovableClock(Protocol):
    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...


class SimClock:
    """Wall-clock time shifted by the hours simulated so far (``clock.json``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = float(json.loads(path.read_text())["offset"]) if path.exists() else 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise InvalidInputError("simulated time only moves forward; give hours >= 0")
        self.offset += seconds
        self.path.write_text(json.dumps({"offset": self.offset}))
        return self.now()


def hours(seconds: float) -> str:
    """``7260.0`` -> ``2h01m``."""
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def at(when: float) -> str:
    """A time as the example prints it (UTC, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when))
