"""``isinstance`` against a runtime-checkable protocol, decided once per class.

Python 3.11 answers ``isinstance(obj, SomeProtocol)`` by listing the protocol's members and
looking each up on ``obj``: some 20-30 us a check, paid on every run started or submitted where
the runtime asks which optional capabilities its store has. A store's capabilities are its
class's methods, so the answer is kept per (class, protocol).

The first answer for a class is the same member lookup, done here, without what ``isinstance``
does when a member is missing: it asks ``abc`` next, which walks every subclass of the protocol
(125 us for a store without ``LiveSource``: a fresh process resuming a run asks that once).
"""

from __future__ import annotations

import typing
from collections.abc import Callable

_KNOWN: dict[tuple[type, type], bool] = {}
_MEMBERS: dict[type, frozenset[str] | None] = {}
_members_of: Callable[[type], set[str]] | None = getattr(typing, "_get_protocol_attrs", None)


def has_capability(obj: object, protocol: type) -> bool:
    """``isinstance(obj, protocol)`` for a ``runtime_checkable`` protocol whose members
    ``obj``'s class defines (not set on the instance), remembered per class. It does not
    narrow types: callers ``cast`` (mypy cannot take a protocol as ``type[T]``)."""
    key = (type(obj), protocol)
    known = _KNOWN.get(key)
    if known is None:
        known = _KNOWN[key] = _decide(obj, protocol)
    return known


def _decide(obj: object, protocol: type) -> bool:
    """``isinstance``'s answer: every member of the protocol found on ``obj`` (a method not
    None), as ``typing`` checks it; a class that names the protocol among its bases is asked
    of ``isinstance`` itself. (A class only ``register``-ed with a protocol is not seen.)"""
    members = _protocol_members(protocol)
    if members is None or protocol in type(obj).__mro__:
        return isinstance(obj, protocol)
    return all(
        hasattr(obj, name)
        and (not callable(getattr(protocol, name, None)) or getattr(obj, name) is not None)
        for name in members
    )


def _protocol_members(protocol: type) -> frozenset[str] | None:
    """The members ``isinstance`` looks up (None where this Python does not say them)."""
    if protocol in _MEMBERS:
        return _MEMBERS[protocol]
    found: frozenset[str] | None = None
    if getattr(protocol, "_is_runtime_protocol", False):
        attrs = getattr(protocol, "__protocol_attrs__", None)  # Python 3.12+
        if attrs is None and _members_of is not None:
            attrs = _members_of(protocol)
        found = None if attrs is None else frozenset(attrs)
    _MEMBERS[protocol] = found
    return found
