"""JSON serialisation used for everything tether persists (orjson, with pydantic support)."""

from __future__ import annotations

import hashlib
from collections.abc import Set
from typing import Any

import orjson

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    if isinstance(obj, Set):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(
        f"cannot persist a value of type {type(obj).__name__}: state, inputs and results must be "
        "JSON-like (dict, list, str, numbers, bool, None), dataclasses or pydantic models"
    )


def _clear(exc: orjson.JSONEncodeError) -> TypeError:
    """orjson wraps the ``default`` hook's error in a generic one; surface ours instead."""
    cause = exc.__cause__
    return cause if isinstance(cause, TypeError) else TypeError(f"cannot persist value: {exc}")


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=_default, option=_OPTS)
    except orjson.JSONEncodeError as exc:
        raise _clear(exc) from None


def loads(data: bytes | bytearray | memoryview | str | None) -> Any:
    if data is None:
        return None
    if isinstance(data, memoryview):
        data = bytes(data)
    return orjson.loads(data)


def fingerprint(obj: Any) -> str:
    """Stable hash of a JSON-like value (sorted keys)."""
    try:
        blob = orjson.dumps(obj, default=_default, option=_OPTS | orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise _clear(exc) from None
    return hashlib.sha256(blob).hexdigest()[:32]
