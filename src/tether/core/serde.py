"""JSON serialisation used for everything tether persists (orjson, with pydantic support)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping, Set
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


def nonfinite_path(obj: Any) -> str | None:
    """Where a NaN or an infinity sits in a JSON-like value: ``""`` for the value itself,
    ``"['scores'][2]"`` inside it; None when there is none.

    JSON has no such numbers (``dumps`` would write ``null``), so state refuses them up front.
    """
    return _nonfinite(obj, 0)


_LEAVES = (str, int, bool, type(None))


def _nonfinite(obj: Any, depth: int) -> str | None:
    t = type(obj)
    if t in _LEAVES:
        return None
    if t is float or isinstance(obj, float):
        return None if math.isfinite(obj) else ""
    if depth > 200:  # deeper than JSON can sensibly nest; dumps reports real cycles
        return None
    is_map = isinstance(obj, Mapping)
    if is_map:
        items: Any = obj.items()
    elif isinstance(obj, list | tuple | Set):
        items = enumerate(obj)
    else:
        return _nonfinite_object(obj, depth)
    for k, v in items:  # leaves inline: most values are, and a call per leaf is the cost
        tv = type(v)
        if tv in _LEAVES:
            continue
        if tv is float:
            if math.isfinite(v):
                continue
            p: str | None = ""
        else:
            p = _nonfinite(v, depth + 1)
            if p is None:
                continue
        return f"[{k!r}]{p}" if is_map else f"[{k}]{p}"
    return None


def _nonfinite_object(obj: Any, depth: int) -> str | None:
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return _nonfinite(dump(), depth + 1)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _nonfinite(
            {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, depth + 1
        )
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if tolist is not None and hasattr(obj, "dtype"):
        return _nonfinite(tolist(), depth + 1)
    return None
