"""``PgMemory``: episodic memory and the knowledge graph on PostgreSQL with pgvector.

Vectors: a ``vector(n)`` column with an HNSW index (cosine); keywords: a generated
``tsvector`` column (``simple`` configuration: no stemming, so IDs and error codes stay whole
words) with a GIN index, ranked by ``ts_rank``. pgvector filters an HNSW scan after the fact,
so a scope holding a small part of the table could come back short: a scope of at most
``exact_below`` memories is searched exactly, and a short HNSW answer is asked again with a
wider ``hnsw.ef_search`` and then exactly. A server without pgvector is refused at ``setup()``
with a ConfigurationError saying how to get it.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError, SchemaVersionError
from tether.llm.embeddings import Embedder
from tether.memory import schema
from tether.memory.episodic_base import SqlEpisodicBase
from tether.memory.pg_db import PgDatabase, PgTx
from tether.memory.sql_kg import SqlKnowledgeGraph
from tether.memory.sql_tx import (
    MEMORY_COLUMNS,
    POSTGRES,
    memory_of,
    memory_params,
    placeholders,
    scope_filter,
)
from tether.memory.types import Memory, MemoryScope

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors

MAX_EF = 1000  # pgvector's ceiling for hnsw.ef_search


def vector_literal(v: Any) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in v) + "]"


class PgMemory(SqlEpisodicBase):
    """EpisodicMemory (this object) and KnowledgeGraph (``.kg``) in a PostgreSQL database."""

    def __init__(
        self,
        dsn: str,
        *,
        embedder: Embedder | None = None,
        clock: Clock = SYSTEM_CLOCK,
        functional_relations: Collection[str] = (),
        exact_below: int = 2000,
        ef_search: int = 100,
        max_connections: int = 8,
        where: str | None = None,
        schema: str | None = None,
    ) -> None:
        super().__init__(embedder=embedder, clock=clock)
        self.schema = schema
        if schema is not None:
            from psycopg.conninfo import make_conninfo

            if not schema.replace("_", "").isalnum():
                raise ConfigurationError(
                    f"schema name {schema!r} must be letters, digits and underscores"
                )
            dsn = make_conninfo(dsn, options=f"-c search_path={schema},public")
        self.db = PgDatabase(dsn, max_size=max_connections)
        self.where = where or "the configured PostgreSQL URL"
        self.exact_below = exact_below
        self.ef_search = ef_search
        self.table = f"{POSTGRES.prefix}memories"
        self.kg = SqlKnowledgeGraph(
            self.db.begin, POSTGRES, clock=clock, functional_relations=functional_relations
        )

    def __repr__(self) -> str:
        return f"PgMemory({self.where})"

    async def setup(self) -> None:
        """Check pgvector (enable it if it is only available), create or upgrade the tables,
        check the embedder's dimensions against the stored vectors."""
        if self.schema is not None:
            async with self.db.transaction("tether-memory-schema") as tx:
                await tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        await self.db.ensure_pgvector(self.where)
        dims = self.embedder.dimensions
        async with self.db.transaction("tether-memory-schema") as tx:
            await tx.execute(schema.version_table(POSTGRES))
            rows = await tx.fetch(f"SELECT MAX(version) FROM {POSTGRES.prefix}memory_schema")
            current = int(rows[0][0] or 0)
            if current > schema.LATEST:
                raise SchemaVersionError(
                    f"the memory tables are at version {current}, newer than this tether "
                    f"({schema.LATEST}); upgrade tether"
                )
            for version, statements in schema.migrations(POSTGRES, dims):
                if version > current:
                    for statement in statements:
                        await tx.execute(statement)
                    await tx.execute(
                        f"INSERT INTO {POSTGRES.prefix}memory_schema(version, applied_at) "
                        "VALUES (?, ?)",
                        [version, time.time()],
                    )
            got = await tx.fetch(
                f"SELECT value FROM {POSTGRES.prefix}memory_meta WHERE name = 'dimensions'"
            )
            if not got:
                await tx.execute(
                    f"INSERT INTO {POSTGRES.prefix}memory_meta(name, value) VALUES (?, ?), (?, ?)",
                    ["dimensions", str(dims), "embedder", self.embedder.name],
                )
        self._check_dimensions(int(got[0][0]) if got else None)

    async def close(self) -> None:
        await self.db.close()

    # -- statements ------------------------------------------------------------------------
    async def _insert(self, memories: list[Memory], vectors: Vectors) -> None:
        sql = (
            f"INSERT INTO {self.table} ({MEMORY_COLUMNS}, embedding) "
            f"VALUES ({placeholders(12)}, CAST(? AS vector))"
        ).replace("?", "%s")
        rows = [
            [*memory_params(m), vector_literal(v)] for m, v in zip(memories, vectors, strict=True)
        ]
        async with self.db.transaction() as tx, tx.conn.cursor() as cur:
            await cur.executemany(sql, rows)

    async def _candidates(
        self, qvec: Any, terms: list[str], scope: MemoryScope, pool: int
    ) -> tuple[list[str], list[str], dict[str, Memory]]:
        where, params = scope_filter(scope)
        async with self.db.transaction() as tx:
            vids = await self._vector_ids(tx, qvec, where, params, pool) if qvec is not None else []
            kids: list[str] = []
            if terms:
                rows = await tx.fetch(
                    f"SELECT id FROM {self.table}, to_tsquery('simple', ?) q "
                    f"WHERE {where} AND words @@ q ORDER BY ts_rank(words, q, 1) DESC, id "
                    "LIMIT ?",
                    [" | ".join(terms), *params, pool],
                )
                kids = [r[0] for r in rows]
            ids = list(dict.fromkeys(vids + kids))
            found: dict[str, Memory] = {}
            if ids:
                rows = await tx.fetch(
                    f"SELECT {MEMORY_COLUMNS} FROM {self.table} WHERE id = ANY(?)", [ids]
                )
                found = {m.id: m for m in map(memory_of, rows)}
        return vids, kids, found

    async def _vector_ids(
        self, tx: PgTx, qvec: Any, where: str, params: list[Any], pool: int
    ) -> list[str]:
        q = vector_literal(qvec)
        rows = await tx.fetch(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {self.table} WHERE {where} LIMIT ?) s",
            [*params, self.exact_below + 1],
        )
        small = int(rows[0][0])
        if small > self.exact_below:
            ef = max(self.ef_search, pool)
            while True:
                await tx.execute(f"SET LOCAL hnsw.ef_search = {min(ef, MAX_EF)}")
                rows = await tx.fetch(
                    f"SELECT id FROM {self.table} WHERE {where} "
                    "ORDER BY embedding <=> CAST(? AS vector) LIMIT ?",
                    [*params, q, pool],
                )
                if len(rows) >= pool or ef >= MAX_EF:
                    break
                ef *= 4
            if len(rows) >= pool:
                return [r[0] for r in rows]
        # exact: "+ 0" keeps the planner off the HNSW index (it orders the scope's rows itself)
        rows = await tx.fetch(
            f"SELECT id FROM {self.table} WHERE {where} "
            "ORDER BY (embedding <=> CAST(? AS vector)) + 0, id LIMIT ?",
            [*params, q, pool],
        )
        return [r[0] for r in rows]

    async def _touch(self, ids: list[str], now: float) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                f"UPDATE {self.table} SET access_count = access_count + 1, "
                "last_accessed_at = GREATEST(last_accessed_at, ?) WHERE id = ANY(?)",
                [now, ids],
            )

    async def _select(self, where: str, params: list[Any], order: str, limit: int) -> list[Memory]:
        sql = f"SELECT {MEMORY_COLUMNS} FROM {self.table} WHERE {where} {order} LIMIT {limit}"
        async with self.db.transaction() as tx:
            return [memory_of(r) for r in await tx.fetch(sql, params)]

    async def _delete(self, ids: list[str], scope: MemoryScope) -> int:
        where, params = scope_filter(scope)
        async with self.db.transaction() as tx:
            return await tx.execute(
                f"DELETE FROM {self.table} WHERE {where} AND id = ANY(?)", [*params, ids]
            )

    async def _count(self, where: str, params: list[Any]) -> int:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(f"SELECT COUNT(*) FROM {self.table} WHERE {where}", params)
        return int(rows[0][0])
