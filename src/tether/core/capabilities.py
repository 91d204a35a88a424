"""``isinstance`` against a runtime-checkable protocol, decided once per class.

Python 3.11 answers ``isinstance(obj, SomeProtocol)`` by listing the protocol's members and
looking each up on ``obj``: some 20-30 us a check, paid on every run started or submitted where
the runtime asks which optional capabilities its store has. A store's capabilities are its
class's methods, so the answer is kept per (class, protocol).
"""

from __future__ import annotations

_KNOWN: dict[tuple[type, type], bool] = {}


def has_capability(obj: object, protocol: type) -> bool:
    """``isinstance(obj, protocol)`` for a ``runtime_checkable`` protocol whose members
    ``obj``'s class defines (not set on the instance), remembered per class. It does not
    narrow types: callers ``cast`` (mypy cannot take a protocol as ``type[T]``)."""
    key = (type(obj), protocol)
    known = _KNOWN.get(key)
    if known is None:
        known = _KNOWN[key] = isinstance(obj, protocol)
    return known
