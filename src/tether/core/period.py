"""Reading a point in time from the command line: ``--since 24h``, ``--since 2026-12-01``."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from tether.core.errors import InvalidInputError

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """A length of time in seconds: ``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or plain seconds."""
    m = _AGO.match(text)
    try:
        seconds = float(m.group(1)) * _UNIT[m.group(2)] if m else float(text)
    except ValueError:
        raise InvalidInputError(
            f"expected a duration such as 90s, 30m, 24h, 7d, 2w or seconds, got {text!r}"
        ) from None
    if not seconds >= 0:  # also refuses NaN
        raise InvalidInputError(f"a duration must be >= 0 seconds, got {text!r}")
    if not math.isfinite(seconds):  # 'inf', '1e400', '1e400d'
        raise InvalidInputError(f"a duration must be a finite number of seconds, got {text!r}")
    return seconds


def parse_when(text: str, now: float) -> float:
    """A time as seconds since the epoch: a duration ago (``90s``, ``30m``, ``24h``, ``7d``,
    ``2w``), an ISO 8601 date or date-time (UTC unless it names a zone), or epoch seconds.
    Not ``nan`` nor ``inf``: a NaN bound compares false with every run's time (``--since nan``
    took every run), an infinite one is no time at all."""
    m = _AGO.match(text)
    try:
        when = now - float(m.group(1)) * _UNIT[m.group(2)] if m else float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(when):
            raise InvalidInputError(
                f"{text!r} is not a point in time: give a duration ago (30m, 24h, 7d), an ISO "
                "date (2026-12-01) or finite Unix seconds"
            )
        return when
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"cannot read {text!r} as a time: use a duration ago (30m, 24h, 7d), an ISO date "
            "(2026-12-01 or 2026-12-01T08:00:00+00:00) or Unix seconds"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
