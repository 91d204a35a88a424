"""What ``assert_fact`` does, decided once for every backend (pure): given the facts of the same
subject and relation valid at the new fact's ``valid_from``, keep one, or add one and close
which."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tether.core.clock import Clock
from tether.memory import validate
from tether.memory.types import Fact, Hop, MemoryScope, Provenance


@dataclass(frozen=True, slots=True)
class Decision:
    existing: Fact | None
    """The same fact, already valid: returned as is, nothing written."""
    supersede: tuple[Fact, ...]
    """Valid facts the new one replaces (functional relation, another object)."""
    until: Fact | None = None
    """The fact (recorded before, valid from later on) where the new one ends: its
    ``valid_to`` is this one's ``valid_from`` and its ``superseded_by`` this one's id."""


def decide(
    obj: str, valid: Sequence[Fact], *, functional: bool, later: Sequence[Fact] = ()
) -> Decision:
    """``valid``: the scope's facts of (subject, relation) valid at the new ``valid_from``;
    ``later``: those that begin after it (any object; ``next_fact`` picks). A fact recorded
    late, starting before one already known, ends where that one begins: for a functional
    relation the next fact of any object, else the next of the same object (one object at a
    time, one row of a fact at a time)."""
    for fact in valid:
        if fact.object == obj:
            return Decision(fact, ())
    return Decision(None, tuple(valid) if functional else (), next_fact(obj, later, functional))


def next_fact(obj: str, later: Sequence[Fact], functional: bool) -> Fact | None:
    """The earliest of ``later`` that ends a new fact of ``obj`` (ties: the smaller id)."""
    ends = [f for f in later if functional or f.object == obj]
    return min(ends, key=lambda f: (f.valid_from, f.id), default=None)


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


def checked_names(subject: object, relation: object, object: object) -> tuple[str, str, str]:
    """A fact's subject, relation and object, checked as ``assert_fact`` checks them."""
    return (
        validate.name(subject, "subject"),
        validate.name(relation, "relation"),
        validate.name(object, "object"),
    )


SEP = "\x1f"
"""Separates fact ids in a recursive query's path and node names in its visited set."""


Edges = Callable[[list[str]], Awaitable[Iterable[tuple[str, str, Fact]]]]
"""The edges ``(from, to, fact)`` that leave any of the given nodes (facts valid at the asked
time, of the asked relations, in the asked direction)."""


def path_key(path: Sequence[Fact]) -> str:
    return SEP.join(f.id for f in path)


async def breadth_first(start: str, depth: int, edges: Edges) -> list[Hop]:
    """The nodes within ``depth`` edges of ``start``, each once, at its least depth, with the
    smallest (by fact ids) of its shortest paths; by depth, then name. One ``edges`` call per
    level, for the nodes first reached at the level before: the work is bounded by the edges
    of the nodes reached, however many paths lead to them (a walk of every path, as a
    recursive query that only keeps each path from looping does, grows with the number of
    paths: a dense graph of ten nodes has millions)."""
    best: dict[str, tuple[int, tuple[Fact, ...]]] = {start: (0, ())}
    frontier = [start]
    for level in range(1, depth + 1):
        if not frontier:
            break
        reached: dict[str, tuple[Fact, ...]] = {}
        for a, b, fact in await edges(frontier):
            if b in best or a not in best:
                continue
            path = (*best[a][1], fact)
            if b not in reached or path_key(path) < path_key(reached[b]):
                reached[b] = path
        for node, path in reached.items():
            best[node] = (level, path)
        frontier = sorted(reached)
    del best[start]
    return sorted(
        (Hop(node, d, p) for node, (d, p) in best.items()), key=lambda h: (h.depth, h.node)
    )


def ends(fact: Fact, direction: str) -> list[tuple[str, str]]:
    """``(from, to)`` of ``fact`` walked in ``direction``."""
    if direction == "out":
        return [(fact.subject, fact.object)]
    if direction == "in":
        return [(fact.object, fact.subject)]
    return [(fact.subject, fact.object), (fact.object, fact.subject)]
