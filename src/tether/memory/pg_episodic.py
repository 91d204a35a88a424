"""``PgMemory``: episodic memory and the knowledge graph on PostgreSQL with pgvector.

Vectors: a ``vector(n)`` column with an HNSW index (cosine); keywords: a generated
``tsvector`` column (``simple`` configuration: no stemming, so IDs and error codes stay whole
words) with a GIN index, ranked by ``ts_rank``. pgvector (0.6) filters an HNSW scan after the
fact, so a scope holding a small part of the table can come back short: a short answer is
replaced by an exact search of the scope (small scopes are cheap to search exactly). A table of
fewer than ``exact_below`` memories is searched exactly from the start: the same answer on
every store filled the same way (an HNSW graph's shape depends on random levels), ties in
distance broken by id. The
vector and keyword queries go as one UNION ALL: a search is one round trip. A server without
pgvector is refused at ``setup()`` with a ConfigurationError saying how to get it.

Round trips: a search, an add, a touch are each one statement on an autocommit connection (one
round trip, no BEGIN/COMMIT); an add of more than ``INSERT_ROWS`` memories is one COPY.
Durability as the run store's: ``"process"`` (default) commits with ``synchronous_commit =
off`` (a commit survives crashes of tether's processes; a crash of the database server's
machine may lose the last fraction of a second of adds, never corrupting anything),
``"power-loss"`` waits for the server's flush on every commit.
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
from tether.memory.pg_db import PgDatabase, PgTx, VectorParam
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


INSERT_ROWS = 64
"""Adds of up to this many memories are one INSERT; bigger ones one COPY."""

_INSERT_TYPES = (
    "text", "text", "text", "text", "text", "text", "text",
    "float8", "float8", "float8", "int8", "text", "text",
)  # fmt: skip
"""The array type of each of ``MEMORY_COLUMNS`` and the vector (as text) in an INSERT."""

DURABILITY = ("process", "power-loss")


def vector_literal(v: Any) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in v) + "]"


def _typed(sql_type: str, values: tuple[Any, ...]) -> list[Any]:
    """A column's values as one Python type (psycopg types a list by its first element)."""
    if sql_type == "float8":
        return [float(v) for v in values]
    if sql_type == "int8":
        return [int(v) for v in values]
    return list(values)


async def direct_gin_inserts(tx: PgTx, index: str) -> None:
    """The keyword index without GIN's pending list (``fastupdate = off``), emptied once. With
    it, adds append there until it holds 4 MB (``gin_pending_list_limit``) and every keyword
    search reads all of it: at 100k memories a keyword query read 152 pending pages, 4.6 ms
    (p50) against 1.1 ms once they were merged. Without it an add updates the index itself
    (a few more page writes)."""
    rows = await tx.fetch(
        "SELECT reloptions FROM pg_class WHERE oid = CAST(? AS regclass)", [index]
    )
    if "fastupdate=off" not in (rows[0][0] or []):
        await tx.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
        await tx.execute("SELECT gin_clean_pending_list(CAST(? AS regclass))", [index])


def insert_sql(table: str) -> str:
    """One INSERT of any number of rows, given as one array per column (``unnest``): the same
    text for every batch size, so the server keeps it prepared."""
    arrays = ", ".join(f"CAST(? AS {t}[])" for t in _INSERT_TYPES)
    return (
        f"INSERT INTO {table} ({MEMORY_COLUMNS}, embedding) SELECT {MEMORY_COLUMNS}, "
        f"CAST(e AS vector) FROM unnest({arrays}) AS u({MEMORY_COLUMNS}, e)"
    )


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
        durability: str = "process",
        exact_below: int = 2000,
    ) -> None:
        super().__init__(embedder=embedder, clock=clock)
        if durability not in DURABILITY:
            raise ConfigurationError(
                f"unknown PostgreSQL memory durability {durability!r}; use 'process' (survives "
                "crashes of tether processes, the default) or 'power-loss' (flush every commit)"
            )
        self.durability = durability
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
        self.db = PgDatabase(
            dsn, max_size=max_connections, synchronous_commit=durability == "power-loss"
        )
        self.where = where or "the configured PostgreSQL URL"
        self.ef_search = ef_search
        self.exact_below = exact_below
        self._added = 0
        """Memories this object added since ``_stats`` was taken (the table is at least that
        much bigger than the statistics say)."""
        self.table = f"{POSTGRES.prefix}memories"
        self._insert_sql = insert_sql(self.table)
        self._stats: tuple[float, float] | None = None
        """When the table's size was read, and the size."""
        self._sizes: dict[tuple[Any, ...], tuple[float, int]] = {}
        """Each scope's size (its WHERE and parameters) and when it was counted."""
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
            await direct_gin_inserts(tx, f"{POSTGRES.prefix}memories_words")
            got = dict(await tx.fetch(f"SELECT name, value FROM {POSTGRES.prefix}memory_meta"))
            if "dimensions" not in got:
                await tx.execute(
                    f"INSERT INTO {POSTGRES.prefix}memory_meta(name, value) VALUES (?, ?), (?, ?)",
                    ["dimensions", str(dims), "embedder", self.embedder.name],
                )
        self._check_embedder(
            (int(got["dimensions"]), got.get("embedder", "")) if "dimensions" in got else None
        )

    async def close(self) -> None:
        await self.db.close()

    # -- statements ------------------------------------------------------------------------
    async def _insert(self, memories: list[Memory], vectors: Vectors) -> None:
        """One statement, atomic on its own: an INSERT of arrays (one round trip) for a few
        rows, a COPY for more (two round trips, but the fastest way in for many rows)."""
        rows = [
            [*memory_params(m), vector_literal(v)] for m, v in zip(memories, vectors, strict=True)
        ]
        if len(rows) <= INSERT_ROWS:
            columns = [
                _typed(t, c) for t, c in zip(_INSERT_TYPES, zip(*rows, strict=True), strict=True)
            ]
            async with self.db.statement() as tx:
                await tx.execute(self._insert_sql, columns)
            self._added += len(rows)
            return
        copy = f"COPY {self.table} ({MEMORY_COLUMNS}, embedding) FROM STDIN"
        async with self.db.statement() as tx, tx.conn.cursor() as cur, cur.copy(copy) as writer:
            for row in rows:
                await writer.write_row(row)
        self._added += len(rows)

    async def _candidates(
        self, qvec: Any, terms: list[str], scope: MemoryScope, pool: int
    ) -> tuple[list[str], list[str], dict[str, Memory]]:
        """One round trip in the usual case: the HNSW query and the keyword query as the two
        halves of a UNION ALL, each row with its distance or rank (sorted here), sent as one
        statement outside any transaction (a transaction only when ``ef_search`` must be raised
        for a big ``pool``). A table under ``exact_below`` memories is searched exactly; an
        HNSW answer short of ``pool`` (the scope filter dropped most of what the index offered,
        or the scope is small) is replaced by an exact search of the scope. Ties (equal
        distance, equal keyword rank) go to the smaller id."""
        where, params = scope_filter(scope)
        total = await self._table_size()
        terms = await self._prune(terms, where, params)
        exact = total + self._added < self.exact_below
        parts: list[str] = []
        args: list[Any] = []
        q = VectorParam(qvec) if qvec is not None else None
        if q is not None:  # the query vector sent once (binary), as a one-row subquery
            # exact: "+ 0" keeps the planner off the HNSW index
            distance = "(embedding <=> qv.v) + 0" if exact else "embedding <=> qv.v"
            order = "2, id" if exact else "embedding <=> qv.v"
            parts.append(
                f"(SELECT 'v', {distance}, {MEMORY_COLUMNS} FROM {self.table}, "
                f"(SELECT CAST(? AS vector) AS v) qv WHERE {where} ORDER BY {order} LIMIT ?)"
            )
            args += [q, *params, pool]
        if terms:
            parts.append(
                f"(SELECT 'k', -ts_rank(words, q, 1), {MEMORY_COLUMNS} FROM {self.table}, "
                f"to_tsquery('simple', ?) q WHERE {where} AND words @@ q "
                "ORDER BY ts_rank(words, q, 1) DESC, id LIMIT ?)"
            )
            args += [" | ".join(terms), *params, pool]
        if not parts:
            return [], [], {}
        widen = q is not None and not exact and pool > self.ef_search  # else the setting holds
        async with self.db.transaction() if widen else self.db.statement() as tx:
            if widen:
                await tx.execute(f"SET LOCAL hnsw.ef_search = {min(pool, 1000)}")  # pgvector's cap
            rows = await tx.fetch(" UNION ALL ".join(parts), args)
            vec = sorted((r[1], r[2]) for r in rows if r[0] == "v")
            if q is not None and not exact and len(vec) < pool:
                scanned = await tx.fetch(
                    f"SELECT 'v', (embedding <=> CAST(? AS vector)) + 0 AS d, {MEMORY_COLUMNS} "
                    f"FROM {self.table} WHERE {where} ORDER BY d, id LIMIT ?",
                    [q, *params, pool],
                )
                rows = [r for r in rows if r[0] != "v"] + scanned
                vec = sorted((r[1], r[2]) for r in scanned)
        found = {r[2]: memory_of(r[2:]) for r in rows}
        kw = sorted((r[1], r[2]) for r in rows if r[0] == "k")
        return [i for _, i in vec], [i for _, i in kw], found

    async def _table_size(self) -> float:
        """How many memories the table holds (whether to search exactly), from the server's
        statistics (the live row count), refreshed every minute."""
        now = time.monotonic()
        if self._stats is None or now - self._stats[0] > 60:
            async with self.db.statement() as tx:
                rows = await tx.fetch(
                    "SELECT GREATEST(c.reltuples, COALESCE(t.n_live_tup, 0)) FROM pg_class c "
                    "LEFT JOIN pg_stat_user_tables t ON t.relid = c.oid "
                    "WHERE c.oid = CAST(? AS regclass)",
                    [self.table],
                )
            self._stats = (now, max(float(rows[0][0] or 0), 0.0) if rows else 0.0)
            self._added = 0
        return self._stats[1]

    async def _prune(self, terms: list[str], where: str, params: list[Any]) -> list[str]:
        """Drop the terms most of the scope's memories have (``fusion.prune_terms``), counted
        in the scope (``where``) alone: counts of the table would let another tenant's writes
        hide this tenant's memories. The scope's size is kept a minute; a scope of
        ``PRUNE_FROM`` memories or more costs one more round trip, each term counted through
        the keyword index up to one past the limit."""
        if not terms:
            return terms
        n = await self._scope_size(where, params)
        if n < fusion.PRUNE_FROM:
            return terms
        async with self.db.statement() as tx:
            rows = await tx.fetch(
                f"SELECT u.t, (SELECT COUNT(*) FROM (SELECT 1 FROM {self.table} WHERE {where} "
                "AND words @@ to_tsquery('simple', u.t) LIMIT ?) x) "
                "FROM unnest(CAST(? AS text[])) AS u(t)",
                [*params, int(fusion.MAX_DF * n) + 1, terms],
            )
        return fusion.prune_terms(terms, {t: float(c) for t, c in rows}, n)

    async def _scope_size(self, where: str, params: list[Any]) -> int:
        """How many memories the scope holds, counted at most once a minute."""
        key = (where, *params)
        now = time.monotonic()
        seen = self._sizes.get(key)
        if seen is None or now - seen[0] > 60:
            if len(self._sizes) >= 4096:  # many scopes: start over rather than grow
                self._sizes.clear()
            async with self.db.statement() as tx:
                rows = await tx.fetch(f"SELECT COUNT(*) FROM {self.table} WHERE {where}", params)
            seen = self._sizes[key] = (now, int(rows[0][0]))
        return seen[1]

    async def _touch(self, ids: list[str], now: float) -> None:
        async with self.db.statement() as tx:
            await tx.execute(
                f"UPDATE {self.table} SET access_count = access_count + 1, "
                "last_accessed_at = GREATEST(last_accessed_at, ?) WHERE id = ANY(?)",
                [now, ids],
            )

    async def _select(self, where: str, params: list[Any], order: str, limit: int) -> list[Memory]:
        sql = f"SELECT {MEMORY_COLUMNS} FROM {self.table} WHERE {where} {order} LIMIT {limit}"
        async with self.db.statement() as tx:
            return [memory_of(r) for r in await tx.fetch(sql, params)]

    async def _delete(self, ids: list[str], scope: MemoryScope) -> int:
        where, params = scope_filter(scope)
        async with self.db.statement() as tx:
            return await tx.execute(
                f"DELETE FROM {self.table} WHERE {where} AND id = ANY(?)", [*params, ids]
            )

    async def _count(self, where: str, params: list[Any]) -> int:
        async with self.db.statement() as tx:
            rows = await tx.fetch(f"SELECT COUNT(*) FROM {self.table} WHERE {where}", params)
        return int(rows[0][0])
