"""Keyset pages of ``list_runs``: ``before``/``after`` a run, instead of an offset.

Runs are listed newest first, ordered by ``(created_at, run_id)``. ``before=run_id`` continues
a listing after its last row (older runs), ``after=run_id`` goes back before its first row
(newer runs, still returned newest first). A cursor reads only the page it returns, through the
``(status, created_at)`` / ``(workflow, created_at)`` indexes, where an offset of N reads and
drops N rows first.
"""

from __future__ import annotations

from typing import Any

from tether.core.errors import InvalidInputError

MAX_POSITION = 2**60
"""The largest step, event seq, offset or count a read takes: a larger one means "all" or "past
the end" and is read as this (the stores keep 64-bit integers, with room left for a store's
``limit + offset``; a Python int is unbounded)."""


def whole(name: str, value: Any) -> int:
    """A count or position given to a read (``limit``, ``offset``, a step, an event seq) as an
    int within +-``MAX_POSITION``. Anything but an int (a bool, a float, a numeric string) is
    refused with InvalidInputError rather than compared, bound or sliced differently by each
    backend."""
    return max(-MAX_POSITION, min(whole_number(name, value), MAX_POSITION))


def whole_number(name: str, value: Any) -> int:
    """``value`` as an int, unbounded; InvalidInputError for anything else (see ``whole``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a whole number (an int), got {value!r}")
    return int(value)


def check_page(before: str | None, after: str | None, offset: Any, limit: Any) -> tuple[int, int]:
    """Refuse a page asked for two ways at once, or with an offset below 0; the offset and
    limit as ints (a limit of 0 or less: no runs)."""
    offset, limit = whole("offset", offset), whole("limit", limit)
    if offset < 0:
        raise InvalidInputError(f"offset must be >= 0 (runs to skip), got {offset}")
    if before is not None and after is not None:
        raise InvalidInputError(
            "list_runs takes one cursor: before=<run id> for older runs or after=<run id> for "
            "newer ones, not both"
        )
    if (before is not None or after is not None) and offset:
        raise InvalidInputError(
            "list_runs pages either by cursor (before=/after= a run id) or by offset, not both: "
            "drop offset and pass the last run id of the previous page as before="
        )
    return offset, limit
