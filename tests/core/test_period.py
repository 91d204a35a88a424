"""Times and durations read from the command line (``--since``, ``--older-than``, ``--ttl``):
NaN and infinity are refused with the forms that work. Before, ``tether kpis --since nan``
reported every run (a NaN bound compares false with every run's time) and ``--since inf``
none, both with exit status 0."""

from __future__ import annotations

import pytest

from tether.core.errors import InvalidInputError
from tether.core.period import parse_duration, parse_when

NOW = 1_800_000_000.0


def test_times_read_as_they_are_written() -> None:
    assert parse_when("24h", NOW) == NOW - 86400
    assert parse_when("1.5d", NOW) == NOW - 1.5 * 86400
    assert parse_when("1700000000", NOW) == 1_700_000_000.0
    assert parse_when("2026-12-01", NOW) == 1_796_083_200.0
    assert parse_when("2026-12-01T01:00:00+01:00", NOW) == 1_796_083_200.0


@pytest.mark.parametrize(
    "text", ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "9" * 400 + "d"]
)
def test_a_time_that_is_not_finite_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a point in time: give a duration ago"):
        parse_when(text, NOW)


def test_durations_read_as_they_are_written() -> None:
    assert parse_duration("90s") == 90.0
    assert parse_duration("2w") == 1_209_600.0
    assert parse_duration("0") == 0.0


@pytest.mark.parametrize("text", ["inf", "1e400", "9" * 400 + "w"])
def test_an_infinite_duration_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="must be a finite number of seconds"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["nan", "-1", "-inf", "soon"])
def test_a_negative_or_unreadable_duration_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_duration(text)
