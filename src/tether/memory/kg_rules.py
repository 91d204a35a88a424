"""What ``assert_fact`` does, decided once for every backend (pure): given the facts of the same
subject and relation valid at the new fact's ``valid_from``, keep one, or add one and close
which."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from tether.memory.types import Fact


@dataclass(frozen=True, slots=True)
class Decision:
    existing: Fact | None
    """The same fact, already valid: returned as is, nothing written."""
    supersede: tuple[Fact, ...]
    """Valid facts the new one replaces (functional relation, another object)."""


def decide(obj: str, valid: Sequence[Fact], *, functional: bool) -> Decision:
    """``valid``: the scope's facts of (subject, relation) valid at the new ``valid_from``."""
    for fact in valid:
        if fact.object == obj:
            return Decision(fact, ())
    return Decision(None, tuple(valid) if functional else ())


def is_functional(relation: str, functional: bool | None, configured: Collection[str]) -> bool:
    return relation in configured if functional is None else bool(functional)


SEP = "\x1f"
"""Separates fact ids in a recursive query's path and node names in its visited set."""
