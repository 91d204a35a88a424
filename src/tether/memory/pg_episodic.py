"""``PgMemory``: episodic memory and the knowledge graph on PostgreSQL with pgvector.

Vectors: a ``vector(n)`` column with an HNSW index (cosine); keywords: a generated
``tsvector`` column (``simple`` configuration: no stemming, so IDs and error codes stay whole
words) with a GIN index, ranked by ``ts_rank``. pgvector (0.6) filters an HNSW scan after the
fact, so a scope holding a small part of the table can come back short: a short answer is
replaced by an exact search of the scope (small scopes are cheap to search exactly). The
vector and keyword queries go as one UNION ALL: a search is one round trip. A server without
pgvector is refused at ``setup()`` with a ConfigurationError saying how to get it.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError, SchemaVersionError
from tether.llm.embeddings import Embedder
from tether.memory import fusion, schema
from tether.memory.episodic_base import SqlEpisodicBase
from tether.memory.pg_db import PgDatabase
from tether.memory.sql_kg import SqlKnowledgeGraph
from tether.memory.sql_tx import (
    MEMORY_COLUMNS,
    POSTGRES,
    memory_of,
    memory_params,
    scope_filter,
)
from tether.memory.types import Memory, MemoryScope

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


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
        ef_search: int = 200,
        max_connections: int = 8,
        where: str | None = None,
        schema: str | None = None,
    ) -> None:
        super().__init__(embedder=embedder, clock=clock)
        self.schema = schema
        from psycopg.conninfo import make_conninfo

        options = [f"-c hnsw.ef_search={int(ef_search)}"]
        if schema is not None:
            if not schema.replace("_", "").isalnum():
                raise ConfigurationError(
                    f"schema name {schema!r} must be letters, digits and underscores"
                )
            options.append(f"-c search_path={schema},public")
        dsn = make_conninfo(dsn, options=" ".join(options))
        self.db = PgDatabase(dsn, max_size=max_connections)
        self.where = where or "the configured PostgreSQL URL"
        self.ef_search = ef_search
        self.table = f"{POSTGRES.prefix}memories"
        self._stats: tuple[float, float, dict[str, float]] | None = None
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
        """One COPY per batch (a row-by-row INSERT costs a round trip each)."""
        copy = f"COPY {self.table} ({MEMORY_COLUMNS}, embedding) FROM STDIN"
        async with (
            self.db.transaction() as tx,
            tx.conn.cursor() as cur,
            cur.copy(copy) as writer,
        ):
            for m, v in zip(memories, vectors, strict=True):
                await writer.write_row([*memory_params(m), vector_literal(v)])

    async def _candidates(
        self, qvec: Any, terms: list[str], scope: MemoryScope, pool: int
    ) -> tuple[list[str], list[str], dict[str, Memory]]:
        """One round trip in the usual case: the HNSW query and the keyword query as the two
        halves of a UNION ALL, each row with its distance or rank (sorted here). An HNSW answer
        short of ``pool`` (the scope filter dropped most of what the index offered, or the
        scope is small) is replaced by an exact search of the scope."""
        where, params = scope_filter(scope)
        terms = await self._prune(terms)
        parts: list[str] = []
        args: list[Any] = []
        q = vector_literal(qvec) if qvec is not None else None
        if q is not None:
            parts.append(
                f"(SELECT 'v', embedding <=> CAST(? AS vector), {MEMORY_COLUMNS} "
                f"FROM {self.table} WHERE {where} "
                "ORDER BY embedding <=> CAST(? AS vector) LIMIT ?)"
            )
            args += [q, *params, q, pool]
        if terms:
            parts.append(
                f"(SELECT 'k', -ts_rank(words, q, 1), {MEMORY_COLUMNS} FROM {self.table}, "
                f"to_tsquery('simple', ?) q WHERE {where} AND words @@ q "
                "ORDER BY ts_rank(words, q, 1) DESC, id LIMIT ?)"
            )
            args += [" | ".join(terms), *params, pool]
        if not parts:
            return [], [], {}
        async with self.db.transaction() as tx:
            if q is not None and pool > self.ef_search:  # else the connection's setting holds
                await tx.execute(f"SET LOCAL hnsw.ef_search = {min(pool, 1000)}")  # pgvector's cap
            rows = await tx.fetch(" UNION ALL ".join(parts), args)
            vec = sorted((r[1], r[2]) for r in rows if r[0] == "v")
            if q is not None and len(vec) < pool:
                # exact: "+ 0" keeps the planner off the HNSW index
                exact = await tx.fetch(
                    f"SELECT 'v', (embedding <=> CAST(? AS vector)) + 0 AS d, {MEMORY_COLUMNS} "
                    f"FROM {self.table} WHERE {where} ORDER BY d, id LIMIT ?",
                    [q, *params, pool],
                )
                rows = [r for r in rows if r[0] != "v"] + exact
                vec = sorted((r[1], r[2]) for r in exact)
        found = {r[2]: memory_of(r[2:]) for r in rows}
        kw = sorted((r[1], r[2]) for r in rows if r[0] == "k")
        return [i for _, i in vec], [i for _, i in kw], found

    async def _prune(self, terms: list[str]) -> list[str]:
        """Drop the terms most memories have (``fusion.prune_terms``), judged from the planner's
        statistics of the ``words`` column (its most common lexemes), refreshed every minute."""
        if not terms:
            return terms
        now = time.monotonic()
        if self._stats is None or now - self._stats[0] > 60:
            async with self.db.transaction() as tx:
                rows = await tx.fetch(
                    "SELECT c.reltuples, s.most_common_elems::text::text[], "
                    "s.most_common_elem_freqs FROM pg_class c LEFT JOIN pg_stats s "
                    "ON s.tablename = c.relname AND s.attname = 'words' "
                    "AND s.schemaname = current_schema() "
                    "WHERE c.oid = CAST(? AS regclass)",
                    [self.table],
                )
            total = max(float(rows[0][0] or 0), 0.0) if rows else 0.0
            elems, freqs = (rows[0][1], rows[0][2]) if rows else (None, None)
            df = dict(zip(elems or [], [f * total for f in (freqs or [])], strict=False))
            self._stats = (now, total, df)
        _, total, df = self._stats
        return fusion.prune_terms(terms, df, total)

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
