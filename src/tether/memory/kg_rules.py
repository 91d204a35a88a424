"""What ``assert_fact`` does, decided once for every backend (pure): given the facts of the same
subject and relation valid at the new fact's ``valid_from``, keep one, or add one and close
which."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tether.core.clock import Clock
from tether.memory import validate
from tether.memory.types import Fact, MemoryScope, Provenance


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


class Assertion(NamedTuple):
    """An ``assert_fact`` call's arguments, checked: what every backend writes from."""

    subject: str
    relation: str
    object: str
    provenance: Provenance
    now: float
    valid_from: float
    functional: bool


def checked_assertion(
    subject: str,
    relation: str,
    object: str,
    *,
    scope: MemoryScope,
    provenance: Provenance | None,
    valid_from: float | None,
    functional: bool | None,
    clock: Clock,
    configured: Collection[str],
) -> Assertion:
    """Validate ``assert_fact``'s arguments (typed errors saying what was wrong) and resolve
    the defaults: ``valid_from`` now, ``functional`` from the configured relations."""
    validate.scope(scope)
    subject = validate.name(subject, "subject")
    relation = validate.name(relation, "relation")
    object = validate.name(object, "object")
    prov = validate.provenance(provenance)
    now = clock.now()
    start = now if valid_from is None else validate.timestamp(valid_from, "valid_from")
    return Assertion(
        subject, relation, object, prov, now, start, is_functional(relation, functional, configured)
    )


SEP = "\x1f"
"""Separates fact ids in a recursive query's path and node names in its visited set."""
