"""Keyset pages of ``list_runs``: ``before``/``after`` a run, instead of an offset.

Runs are listed newest first, ordered by ``(created_at, run_id)``. ``before=run_id`` continues
a listing after its last row (older runs), ``after=run_id`` goes back before its first row
(newer runs, still returned newest first). A cursor reads only the page it returns, through the
``(status, created_at)`` / ``(workflow, created_at)`` indexes, where an offset of N reads and
drops N rows first.
"""

from __future__ import annotations

from tether.core.errors import InvalidInputError


def check_page(before: str | None, after: str | None, offset: int) -> None:
    """Refuse a page asked for two ways at once."""
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
