"""Storable copies of values tether keeps but did not get from the node's author directly.

What a node hands over as its own (state writes, interrupt payloads, ``Send`` arguments) is
checked with ``serde.unstorable`` and refused with a typed error when the store cannot hold it.
Two kinds of values are kept instead, whatever they hold:

* **what a journaled call asked and got back** (``journal_copy``): the call may have happened
  already (a charge, an email), so its result is kept as the JSON the store holds and the
  node gets that same copy back, live and on replay: NaN and infinity become None, tuples and
  sets lists, models and dataclasses dicts, and text that is not valid UTF-8 (a lone
  surrogate, as ``errors="surrogateescape"`` leaves) has each surrogate replaced by U+FFFD,
  as ``bytes.decode(errors="replace")`` does; any other mapping is kept as a dict, any other
  sequence (a deque, a named tuple) as a list, and an object pydantic writes as JSON as
  pydantic writes it (a ``Decimal`` or a path as text). Only what JSON cannot carry at all (an
  integer beyond 64 bits, an object nothing can write) is refused, with ``TypeError``;
* **what a run records about itself** (``record_copy``, ``dumps_record``: events, custom ones
  from ``ctx.emit`` included, errors, escalations): never refused, so a failure is always
  recorded; on top of the above, an integer beyond 64 bits is kept as its digits and any other
  object as its ``repr``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence, Set
from typing import Any

from pydantic_core import to_jsonable_python

from tether.core import serde

_SURROGATES = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 200


def scrub_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the text itself when it has none)."""
    if text.isascii() or _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text)


def error_text(exc: BaseException) -> str:
    """``str(exc)``, kept: an exception whose ``__str__`` raises (a bug in it, a message nested
    too deep for ``repr``) is described instead of failing whatever records it."""
    try:
        return scrub_text(str(exc))
    except Exception as broken:
        return f"<{type(exc).__name__} whose str() raised {type(broken).__name__}>"


def journal_copy(value: Any) -> Any:
    """``value`` as the journal keeps it and gives it back (see the module). Raises TypeError
    for an integer beyond 64 bits or an object that is not JSON-like."""
    try:
        return serde.loads(serde.dumps(value))
    except TypeError:
        return serde.loads(serde.dumps(_clean(value, False, 0)))


def record_copy(value: Any) -> Any:
    """``value`` as a run's record keeps it: ``journal_copy``, and what that refuses as text."""
    if not value and isinstance(value, dict | list):  # most events carry nothing: no round trip
        return type(value)()
    return serde.loads(dumps_record(value))


def dumps_record(value: Any) -> bytes:
    """``serde.dumps`` that never refuses (see the module): for events, errors, escalations."""
    try:
        return serde.dumps(value)
    except TypeError:
        pass
    try:
        return serde.dumps(_clean(value, True, 0))
    except (TypeError, RecursionError):  # a cycle: the whole value as text
        return serde.dumps(scrub_text(_repr(value)))


def _clean(obj: Any, lenient: bool, depth: int) -> Any:
    """A copy of ``obj`` with its text scrubbed, the containers ``dumps`` writes made plain;
    ``lenient``: what it would still refuse as text."""
    if isinstance(obj, str):
        return scrub_text(str.__str__(obj))
    if obj is None or isinstance(obj, bool) or type(obj) is float:
        return obj
    if isinstance(obj, int):
        if lenient and serde.unstorable(obj) is not None:
            return str(int(obj))
        return obj
    if depth > _MAX_DEPTH:
        return scrub_text(_repr(obj)) if lenient else obj
    nxt = depth + 1
    if isinstance(obj, Mapping):
        return {_clean_key(k, lenient): _clean(v, lenient, nxt) for k, v in obj.items()}
    if isinstance(obj, Set):
        return [_clean(v, lenient, nxt) for v in sorted(obj, key=repr)]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, Sequence) and not isinstance(obj, bytearray | memoryview):
        return [_clean(v, lenient, nxt) for v in obj]
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        try:
            return _clean(dump(mode="json"), lenient, nxt)
        except Exception:
            return scrub_text(_repr(obj)) if lenient else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return _clean(fields, lenient, nxt)
    found = serde.unstorable(obj)
    if found is None or not serde.is_unsupported(found[1]):  # numpy, dates, enums...
        return obj
    try:
        return _clean(to_jsonable_python(obj), lenient, nxt)
    except Exception:  # nothing can write it
        return scrub_text(_repr(obj)) if lenient else obj


def _clean_key(key: Any, lenient: bool) -> Any:
    if isinstance(key, str):
        return scrub_text(str.__str__(key))
    if lenient and serde.unstorable({key: None}) is not None:
        return scrub_text(_repr(key))
    return key


def _repr(obj: Any) -> str:
    try:
        return repr(obj)[:2000]
    except Exception:
        return f"<{type(obj).__qualname__}>"
