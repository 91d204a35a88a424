"""``SqlKnowledgeGraph``: the KnowledgeGraph on SQLite and PostgreSQL, one implementation.

Facts live in ``tether_kg_facts`` beside the episodic memories. Multi-hop queries walk breadth
first, one query per level for the facts (valid at the asked time) that leave the nodes first
reached at the level before: each node is expanded once, so the work is
bounded by the edges reached, never by the number of paths (a recursive CTE that only keeps
each path from looping enumerates every simple path: minutes on a dense graph of nine nodes).
The levels' queries run in one read transaction that sees one snapshot of the graph, so a fact
another process supersedes mid-walk is seen as it was at the first level or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.memory import kg_rules, validate
from tether.memory.sql_tx import (
    SqlFlavor,
    Tx,
    dump,
    exact_scope,
    placeholders,
    provenance_of,
    scope_filter,
    scope_of,
    tenant_key,
)
from tether.memory.types import Direction, Fact, Hop, MemoryScope, Provenance

COLUMNS = (
    "id, tenant, agent, run_id, thread_id, subject, relation, object, valid_from, valid_to, "
    "recorded_at, provenance, superseded_by"
)
VALID_AT = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"

Begin = Callable[[str | None], AbstractAsyncContextManager[Tx]]
"""Opens a transaction; the argument names a lock to take in it (writers of one subject and
relation wait for each other), None for a read whose statements all see one snapshot."""


def fact_of(row: Sequence[Any]) -> Fact:
    return Fact(
        id=row[0],
        scope=scope_of(row[1], row[2], row[3], row[4]),
        subject=row[5],
        relation=row[6],
        object=row[7],
        valid_from=float(row[8]),
        valid_to=None if row[9] is None else float(row[9]),
        recorded_at=float(row[10]),
        provenance=provenance_of(row[11]),
        superseded_by=row[12],
    )


class SqlKnowledgeGraph:
    """KnowledgeGraph over a SQL database (see ``tether.memory.protocol``)."""

    def __init__(
        self,
        begin: Begin,
        flavor: SqlFlavor,
        *,
        clock: Clock = SYSTEM_CLOCK,
        functional_relations: Collection[str] = (),
    ) -> None:
        self._begin = begin
        self.flavor = flavor
        self.clock = clock
        self.functional_relations = frozenset(functional_relations)
        self.table = f"{flavor.prefix}kg_facts"

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
        where, params = exact_scope(self.flavor, scope)
        lock = kg_rules.SEP.join((tenant_key(scope), subject, relation))
        async with self._begin(lock) as tx:
            rows = await tx.fetch(
                f"SELECT {COLUMNS} FROM {self.table} WHERE {where} AND subject = ? AND "
                f"relation = ? AND {VALID_AT} ORDER BY valid_from, id",
                [*params, subject, relation, start, start],
            )
            valid = [fact_of(r) for r in rows]
            if any(f.object == object for f in valid):
                later: list[Fact] = []
            else:  # the next fact that begins after this one, where this one ends
                same = "" if is_fn else " AND object = ?"
                later = [
                    fact_of(r)
                    for r in await tx.fetch(
                        f"SELECT {COLUMNS} FROM {self.table} WHERE {where} AND subject = ? AND "
                        f"relation = ? AND valid_from > ?{same} ORDER BY valid_from, id LIMIT 1",
                        [*params, subject, relation, start, *([] if is_fn else [object])],
                    )
                ]
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
            await tx.execute(
                f"INSERT INTO {self.table} ({COLUMNS}) VALUES ({placeholders(13)})",
                [
                    fact.id,
                    tenant_key(scope),
                    scope.agent,
                    scope.run_id,
                    scope.thread_id,
                    subject,
                    relation,
                    object,
                    start,
                    fact.valid_to,
                    now,
                    dump(prov.to_dict()),
                    fact.superseded_by,
                ],
            )
            for old in decision.supersede:
                await tx.execute(
                    f"UPDATE {self.table} SET valid_to = ?, superseded_by = ? WHERE id = ?",
                    [start, fact.id, old.id],
                )
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
        where, params = exact_scope(self.flavor, scope)
        lock = kg_rules.SEP.join((tenant_key(scope), subject, relation))
        async with self._begin(lock) as tx:
            return await tx.execute(
                f"UPDATE {self.table} SET valid_to = CASE WHEN valid_from > ? THEN valid_from "
                f"ELSE ? END WHERE {where} AND subject = ? AND relation = ? AND object = ? "
                f"AND {VALID_AT}",
                [end, end, *params, subject, relation, object, end, end],
            )

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
        where, params = scope_filter(scope)
        for column, value in (("subject", subject), ("relation", relation), ("object", object)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(validate.name(value, column))
        if not include_history:
            t = self.clock.now() if at is None else validate.timestamp(at, "at")
            where += f" AND {VALID_AT}"
            params += [t, t]
        async with self._begin(None) as tx:
            rows = await tx.fetch(
                f"SELECT {COLUMNS} FROM {self.table} WHERE {where} "
                f"ORDER BY valid_from, id LIMIT {limit}",
                params,
            )
        return [fact_of(r) for r in rows]

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
        where, params = scope_filter(scope)
        where += f" AND {VALID_AT}"
        params += [t, t]
        if wanted is not None:
            where += f" AND relation IN ({placeholders(len(wanted))})"
            params += wanted
        cols = {"out": ["subject"], "in": ["object"]}.get(direction, ["subject", "object"])
        async with self._begin(None) as tx:

            async def edges(nodes: list[str]) -> list[tuple[str, str, Fact]]:
                found: dict[str, Fact] = {}
                for n in range(0, len(nodes), 500):
                    chunk = nodes[n : n + 500]
                    for col in cols:
                        rows = await tx.fetch(
                            f"SELECT {COLUMNS} FROM {self.table} WHERE {where} AND {col} IN "
                            f"({placeholders(len(chunk))})",
                            [*params, *chunk],
                        )
                        found.update((f.id, f) for f in map(fact_of, rows))
                return [
                    e
                    for f in found.values()
                    for e in ((*p, f) for p in kg_rules.ends(f, direction))
                ]

            return await kg_rules.breadth_first(start, depth, edges)

    async def history(self, subject: str, relation: str, *, scope: MemoryScope) -> list[Fact]:
        return await self.facts(
            scope=scope, subject=subject, relation=relation, include_history=True, limit=10_000
        )

    async def forget_facts(self, ids: Sequence[str], *, scope: MemoryScope) -> int:
        validate.scope(scope)
        wanted = validate.ids(ids)
        if not wanted:
            return 0
        where, params = scope_filter(scope)
        async with self._begin("") as tx:
            return await tx.execute(
                f"DELETE FROM {self.table} WHERE {where} AND id IN ({placeholders(len(wanted))})",
                [*params, *wanted],
            )

    async def close(self) -> None:
        """Nothing of its own to close: the memory store that holds it owns the connection."""
        return None
