"""A specialist's answer that hands its task to another: ``HANDOFF <name>: <why>``.

The name is read against the specialists' names, not a pattern of its own: a name may hold
spaces or dots (``data analyst``, ``billing.eu``), the keyword and the name may differ in case
or sit in markdown (``**HANDOFF Billing**: ...``), and ``parse`` is not read in ``parser``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_HANDOFF = re.compile(r"^[\s*_`]*HANDOFF\b[\s*_`:]*(.*)$", re.IGNORECASE | re.DOTALL)
_TRIM = " \t\r\n*_`:"


@dataclass(frozen=True)
class Handoff:
    to: str | None
    """The specialist named (as registered), or None: the answer names none of them."""
    said: str
    """The name as the answer wrote it."""
    why: str


def read_handoff(answer: str, names: Sequence[str]) -> Handoff | None:
    """The handoff ``answer`` asks for, or None when it is an answer of its own."""
    m = _HANDOFF.match(answer)
    if m is None:
        return None
    rest = m.group(1)
    for name in sorted(names, key=len, reverse=True):  # "data analyst" before "data"
        after = rest[len(name) : len(name) + 2]  # "billing" is not read in "billing.eu"
        if rest[: len(name)].lower() == name.lower() and not re.match(r"\w|[.-]\w", after):
            return Handoff(name, rest[: len(name)], rest[len(name) :].strip(_TRIM))
    said, _, why = rest.partition(":")
    said = said.splitlines()[0] if said.strip() else ""
    return Handoff(None, said.strip(_TRIM), why.strip(_TRIM))
