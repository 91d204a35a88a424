"""Opaque page cursors: ``?cursor=`` hands back what the previous page's ``next_cursor`` said.

A cursor is url-safe base64 of a small JSON value (the last run id, step or event seq of the
page); a cursor that does not decode is a 422, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from tether.server.problems import ApiProblem
from tether.server.schemas import ID_PATTERN
from tether.store.paging import MAX_POSITION

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode(kind: str, value: Any) -> str:
    raw = json.dumps([kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got, value = json.loads(raw)
        if got != kind:
            raise ValueError(kind)
        return value
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _bad(cursor) from None


def _bad(cursor: str) -> ApiProblem:
    return ApiProblem(
        422,
        f"cursor {cursor[:80]!r} is not a cursor of this list; pass the next_cursor "
        "of the previous page unchanged (or no cursor for the first page)",
        kind="invalid-cursor",
    )


def gone(what: str) -> ApiProblem:
    """The problem of a well-formed cursor whose ``what`` is gone (purged) or not the
    caller's to see: the same answer for both."""
    return ApiProblem(
        422,
        f"the cursor's {what} no longer exists (purged); list again from the first page",
        kind="invalid-cursor",
    )


def decode_int(kind: str, cursor: str) -> int:
    value = decode(kind, cursor)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_POSITION:
        raise _bad(cursor)
    return int(value)


def decode_str(kind: str, cursor: str) -> str:
    """An id cursor: an id as the API's paths take them (a hand-made one holding a lone
    surrogate or a NUL would otherwise reach the store's text columns)."""
    value = decode(kind, cursor)
    if not isinstance(value, str) or re.fullmatch(ID_PATTERN, value) is None:
        raise _bad(cursor)
    return str(value)
