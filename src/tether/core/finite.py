"""Settings that are numbers of seconds, prices or weights: refused unless finite.

NaN compares false with everything, so a NaN setting never errs loudly: a deadline that is never
reached, a breaker that never closes, a price that never adds up. ``check_number`` refuses it
(and infinity, and booleans) with the setting's name, at the constructor.
"""

from __future__ import annotations

import math
from typing import Any

from tether.core.errors import ConfigurationError, TetherError


def is_number(value: Any) -> bool:
    """A finite int or float (``True`` is not a number here; nor an int too large for a
    float, which ``math.isfinite`` cannot even convert)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_number(
    what: str,
    value: Any,
    *,
    minimum: float = 0.0,
    above: bool = False,
    unit: str = "",
    error: type[TetherError] = ConfigurationError,
) -> float:
    """``value`` as a float when it is a finite number ``>= minimum`` (``> minimum`` with
    ``above``); else ``error`` naming ``what`` (``unit``: " of seconds" says what it counts)."""
    if not is_number(value) or value < minimum or (above and value == minimum):
        bound = f"{'>' if above else '>='} {minimum:g}"
        raise error(f"{what} must be a finite number{unit} {bound}, got {value!r}")
    return float(value)


def check_similarity(what: str, value: Any, *, low: float, low_open: bool) -> float:
    """A cosine-similarity setting: a finite number up to 1 and above ``low`` (``> low`` when
    ``low_open``, else ``>= low``); else ConfigurationError naming ``what``."""
    ok = is_number(value) and value <= 1.0 and (value > low if low_open else value >= low)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, 1]"
        raise ConfigurationError(f"{what} is a cosine similarity in {interval}, got {value!r}")
    return float(value)
