"""``InProcessKnowledgeGraph``: the reference KnowledgeGraph, in a list, for tests and demos."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import replace

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.memory import kg_rules, validate
from tether.memory.types import Direction, Fact, Hop, MemoryScope, Provenance


class InProcessKnowledgeGraph:
    """Facts held in this process (see ``tether.memory.protocol`` for the semantics)."""

    def __init__(
        self, *, clock: Clock = SYSTEM_CLOCK, functional_relations: Collection[str] = ()
    ) -> None:
        self.clock = clock
        self.functional_relations = frozenset(functional_relations)
        self._facts: dict[str, Fact] = {}
        self._lock = asyncio.Lock()

    async def assert_fact(
        self,
        subject: str,
        relation: str,
        object: str,
        *,
        scope: MemoryScope,
        provenance: Provenance | None = None,
        valid_from: float | None = None,
        functional: bool | None = None,
    ) -> Fact:
        subject, relation, object, prov, now, start, is_fn = kg_rules.checked_assertion(
            subject,
            relation,
            object,
            scope=scope,
            provenance=provenance,
            valid_from=valid_from,
            functional=functional,
            clock=self.clock,
            configured=self.functional_relations,
        )
        async with self._lock:
            same = [
                f
                for f in self._facts.values()
                if f.scope == scope and f.subject == subject and f.relation == relation
            ]
            valid = [f for f in same if f.valid_at(start)]
            later = [f for f in same if f.valid_from > start]
            decision = kg_rules.decide(object, valid, functional=is_fn, later=later)
            if decision.existing is not None:
                return decision.existing
            until = decision.until
            fact = Fact(
                id=validate.new_memory_id(),
                subject=subject,
                relation=relation,
                object=object,
                scope=scope,
                valid_from=start,
                valid_to=None if until is None else until.valid_from,
                recorded_at=now,
                provenance=prov,
                superseded_by=None if until is None else until.id,
            )
            for old in decision.supersede:
                self._facts[old.id] = replace(old, valid_to=start, superseded_by=fact.id)
            self._facts[fact.id] = fact
            return fact

    async def retract(
        self,
        subject: str,
        relation: str,
        object: str,
        *,
        scope: MemoryScope,
        at: float | None = None,
    ) -> int:
        validate.scope(scope)
        subject, relation, object = kg_rules.checked_names(subject, relation, object)
        end = self.clock.now() if at is None else validate.timestamp(at, "at")
        n = 0
        async with self._lock:
            for f in list(self._facts.values()):
                if (
                    f.scope == scope
                    and (f.subject, f.relation, f.object) == (subject, relation, object)
                    and f.valid_at(end)
                ):
                    self._facts[f.id] = replace(f, valid_to=max(end, f.valid_from))
                    n += 1
        return n

    async def facts(
        self,
        *,
        scope: MemoryScope,
        subject: str | None = None,
        relation: str | None = None,
        object: str | None = None,
        at: float | None = None,
        include_history: bool = False,
        limit: int = 1000,
    ) -> list[Fact]:
        validate.scope(scope)
        limit = validate.limit(limit)
        t = self.clock.now() if at is None else validate.timestamp(at, "at")
        out = [
            f
            for f in self._facts.values()
            if scope.covers(f.scope)
            and (subject is None or f.subject == subject)
            and (relation is None or f.relation == relation)
            and (object is None or f.object == object)
            and (include_history or f.valid_at(t))
        ]
        out.sort(key=lambda f: (f.valid_from, f.id))
        return out[:limit]

    async def hops(
        self,
        start: str,
        *,
        scope: MemoryScope,
        relations: Sequence[str] | None = None,
        depth: int = 2,
        direction: Direction = "out",
        at: float | None = None,
    ) -> list[Hop]:
        validate.scope(scope)
        start = validate.name(start, "start")
        wanted = validate.relations(relations)
        depth = validate.depth(depth)
        validate.direction(direction)
        t = self.clock.now() if at is None else validate.timestamp(at, "at")
        out: dict[str, list[tuple[str, str, Fact]]] = {}
        for f in self._facts.values():
            if scope.covers(f.scope) and f.valid_at(t) and (wanted is None or f.relation in wanted):
                for a, b in kg_rules.ends(f, direction):
                    out.setdefault(a, []).append((a, b, f))

        async def edges(nodes: list[str]) -> list[tuple[str, str, Fact]]:
            return [e for n in nodes for e in out.get(n, ())]

        return await kg_rules.breadth_first(start, depth, edges)

    async def history(self, subject: str, relation: str, *, scope: MemoryScope) -> list[Fact]:
        return await self.facts(
            scope=scope, subject=subject, relation=relation, include_history=True, limit=10_000
        )

    async def forget_facts(self, ids: Sequence[str], *, scope: MemoryScope) -> int:
        validate.scope(scope)
        n = 0
        async with self._lock:
            for i in validate.ids(ids):
                f = self._facts.get(i)
                if f is not None and scope.covers(f.scope):
                    del self._facts[i]
                    n += 1
        return n

    async def close(self) -> None:
        return None
