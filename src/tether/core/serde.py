"""JSON serialisation used for everything tether persists (orjson, with pydantic support)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import math
import re
import uuid
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
    if isinstance(cause, TypeError):
        return cause
    if "Recursion limit" in str(exc):  # orjson's own words name no limit: say what it is
        return TypeError(
            "cannot persist value: lists and objects nested deeper than 254 levels (or a value "
            "that contains itself)"
        )
    return TypeError(f"cannot persist value: {exc}")


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


NONFINITE = "a NaN or infinity"
SURROGATE = "a string that is not valid UTF-8 (a lone surrogate)"
HUGE_INT = "an integer beyond 64 bits"
NOT_UTF8 = "bytes that are not UTF-8 text"
"""``dumps`` writes bytes as text: bytes that do not decode (an image, a zip, a pickle) would
come back from the store with U+FFFD in place of what did not, so they are refused instead."""
MAX_DEPTH = 200
"""Lists and objects nested in a value tether keeps: at most this deep. Its stored forms (a
checkpoint, an event, a history entry) wrap it in a few levels more, and ``dumps`` (orjson)
writes at most 254."""
TOO_DEEP = f"lists and objects nested deeper than {MAX_DEPTH} levels"
UNSUPPORTED = "not JSON-like"
"""The end of what ``unstorable`` says about an object ``dumps`` refuses: ``"an object of type
Decimal (not JSON-like)"``."""


def unstorable(obj: Any) -> tuple[str, str] | None:
    """Where a JSON-like value holds something tether cannot store, and what: ``(path, what)``,
    the path ``""`` for the value itself and ``"['scores'][2]"`` inside it; None when there is
    none. What: ``NONFINITE`` (JSON has no NaN or infinity: ``dumps`` would write ``null``),
    ``SURROGATE`` (a string holding a lone surrogate, as bytes decoded with
    ``errors="surrogateescape"`` give; ``dumps`` refuses it), ``NOT_UTF8`` (bytes ``dumps``
    could only write with their undecodable parts replaced), ``HUGE_INT`` (beyond what
    ``dumps`` writes), ``TOO_DEEP`` (lists and objects nested over ``MAX_DEPTH`` levels; the
    path is then ``""``), or ``"an object of type Decimal (not JSON-like)"`` (ending in
    ``UNSUPPORTED``: an object ``dumps`` refuses, such as a ``Decimal``, a ``deque``, a
    ``MappingProxyType``, a named tuple, a tuple as a dict key). A value it finds nothing in
    is one ``dumps`` writes. State and inputs are checked with it up front, so such a value is
    the writer's error, named where it sits, not a failure at the commit."""
    return _unstorable(obj, 0)


_FINE = (bool, type(None))
MIN_INT, MAX_INT = -(2**63), 2**64 - 1  # orjson writes i64 and u64
_SURROGATES = re.compile("[\ud800-\udfff]")


def _unstorable(obj: Any, depth: int) -> tuple[str, str] | None:
    t = type(obj)
    if t is dict and depth < MAX_DEPTH:  # the common case (an event's data): straight to it
        return _unstorable_items(obj.items(), True, depth)
    if t in _FINE:
        return None
    if isinstance(obj, str):
        s = obj if t is str else str.__str__(obj)  # a str subclass (an enum): its characters
        return None if s.isascii() or _SURROGATES.search(s) is None else ("", SURROGATE)
    if isinstance(obj, float):
        if t is not float and not hasattr(obj, "dtype"):  # orjson writes no float subclass
            return _unsupported(obj)
        return None if math.isfinite(obj) else ("", NONFINITE)
    if isinstance(obj, int):
        return None if MIN_INT <= obj <= MAX_INT else ("", HUGE_INT)
    if depth >= MAX_DEPTH:  # a cycle lands here too (as what dumps would refuse anyway)
        return "", TOO_DEEP
    is_map = isinstance(obj, dict)  # orjson writes dicts (and subclasses), no other mapping
    if is_map:
        items: Any = obj.items()
    elif isinstance(obj, list) or t is tuple or isinstance(obj, Set):
        items = enumerate(obj)
    else:
        return _unstorable_object(obj, depth)
    return _unstorable_items(items, is_map, depth)


def _unstorable_items(items: Any, is_map: bool, depth: int) -> tuple[str, str] | None:
    """``_unstorable`` of a container's ``items`` (a dict's ``items()``, or ``enumerate``)."""
    found: tuple[str, str] | None
    for k, v in items:  # leaves inline: most values are, and a call per leaf is the cost
        if is_map and type(k) is not str:
            if not isinstance(k, _KEYS):
                return f"[{k!r}]", _unsupported(k)[1]
            bad_key = _unstorable(k, depth + 1)
            if bad_key is not None:
                return f"[{k!r}]", bad_key[1]
        elif is_map and not k.isascii() and _SURROGATES.search(k):
            return f"[{k!r}]", SURROGATE
        tv = type(v)
        if tv is str:
            if v.isascii() or _SURROGATES.search(v) is None:
                continue
            found = ("", SURROGATE)
        elif tv is float:
            if math.isfinite(v):
                continue
            found = ("", NONFINITE)
        elif tv is int:
            if MIN_INT <= v <= MAX_INT:
                continue
            found = ("", HUGE_INT)
        elif tv in _FINE:
            continue
        else:
            found = _unstorable(v, depth + 1)
            if found is None:
                continue
        p, what = found
        if what == TOO_DEEP:  # the path to the bottom would be as long as the value is deep
            return found
        return (f"[{k!r}]{p}" if is_map else f"[{k}]{p}"), what
    return None


_NATIVE = (datetime.date, datetime.time, uuid.UUID, bytes)
"""Objects ``dumps`` writes as text (``bytes`` decoded, invalid UTF-8 replaced: ``unstorable``
reports such bytes as ``NOT_UTF8``)."""
_KEYS = (str, int, float, bool, type(None), datetime.date, datetime.time, uuid.UUID, enum.Enum)
"""What a dict key may be (orjson's ``OPT_NON_STR_KEYS``)."""


def _unstorable_object(obj: Any, depth: int) -> tuple[str, str] | None:
    """An object inside a value, as ``dumps`` writes it (orjson natively, else ``_default``)."""
    dump = getattr(obj, "model_dump", None)
    if dump is not None:  # NaN is found in the Python dump (JSON mode writes it as null) ...
        found = _unstorable(dump(), depth + 1)
        if found is None or not is_unsupported(found[1]):
            return found
        try:  # ... what JSON mode converts (a Decimal, a path) only in the JSON dump
            return _unstorable(dump(mode="json"), depth + 1)
        except Exception:
            return found
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _unstorable(
            {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, depth + 1
        )
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if tolist is not None and hasattr(obj, "dtype"):
        return _unstorable(tolist(), depth + 1)
    if isinstance(obj, enum.Enum):
        return _unstorable(obj.value, depth + 1)
    if isinstance(obj, bytes):
        return None if obj.isascii() or _decodes(obj) else ("", NOT_UTF8)
    if isinstance(obj, _NATIVE):
        return None
    return _unsupported(obj)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_unsupported(what: str) -> bool:
    """Whether ``what`` (from ``unstorable``) is an object ``dumps`` refuses."""
    return what.endswith(f"({UNSUPPORTED})")


def _unsupported(obj: Any) -> tuple[str, str]:
    return "", f"an object of type {type(obj).__qualname__} ({UNSUPPORTED})"
