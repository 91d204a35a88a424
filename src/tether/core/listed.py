"""Settings that take a list: one item (or a string) given where a list belongs is refused by
name, with how to write it, instead of a bare ``TypeError: ... is not iterable`` (or, for a
string or a dict, its letters or keys taken as the items)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from tether.core.errors import ConfigurationError

T = TypeVar("T")


def listed(what: str, value: Iterable[T], example: str) -> list[T]:
    """``value`` as a list. ``what`` names the setting (``ToolExecutor(tools)``), ``example``
    spells the fix (``[my_tool]``)."""
    if type(value) is list or type(value) is tuple:  # no Mapping check: the first costs 40 us
        return list(value)
    if isinstance(value, str | bytes):
        raise ConfigurationError(f"{what} takes a list, not the string {value!r}: {example}")
    if isinstance(value, Mapping):  # iterating it would give its keys
        raise ConfigurationError(f"{what} takes a list, got one {type(value).__name__}: {example}")
    try:
        return list(value)
    except TypeError:
        raise ConfigurationError(
            f"{what} takes a list, got one {type(value).__name__}: {example}"
        ) from None
