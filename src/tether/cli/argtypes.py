"""argparse ``type=`` converters shared by the CLI's commands: a bad value is a usage error
that says what was expected."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from tether.core.errors import InvalidInputError
from tether.core.period import parse_duration, parse_when


def positive_int(text: str) -> int:
    """A whole number >= 1 (``--limit``, ``--concurrency``...)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def match_name(text: str) -> str:
    """A name to match (``--workflow``, ``--thread``): not empty, no spaces around it (an unset
    shell variable or a pasted id would otherwise match nothing, quietly)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a name, got an empty one")
    if text != text.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} has spaces around it; no name has: use {text.strip()!r}"
        )
    return text


def port(text: str) -> int:
    """A TCP port: 0..65535 (0: any free port)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0: any free port), got {text}")
    return n


def duration(text: str) -> float:
    """A length of time (``30d``, ``12h``, ``90s`` or seconds) in seconds, > 0."""
    try:
        seconds = parse_duration(text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0 seconds, got {text!r}")
    return seconds


def when(text: str) -> float:
    """A point in time as Unix seconds: a duration ago (``24h``, ``7d``), an ISO date or Unix
    seconds (``--since``, ``--older-than``)."""
    try:
        ts = parse_when(text, time.time())
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    try:  # a time no date can show ('999999999999d' ago, 1e18) is a mistake, not a bound
        datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range: give a time between the years 1 and 9999, "
            "e.g. a duration ago (30d), an ISO date (2026-12-01) or Unix seconds"
        ) from None
    return ts
