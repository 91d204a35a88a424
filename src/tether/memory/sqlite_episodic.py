"""``SqliteMemory``: episodic memory and the knowledge graph in a SQLite file.

The tables live in the run store's own database file (one file to back up and move; the memory
plane's tables are created by ``setup()``, versioned in ``tether_memory_schema``). Keywords:
FTS5 (``bm25``). Vectors: a float32 blob per row, searched through a usearch HNSW index kept
beside the file (``ann_index``: Python's sqlite3 here cannot load extensions, and sqlite-vec's
brute force would miss the 10 ms target at 100k memories anyway). A scope with at most
``exact_below`` memories is searched exactly instead (no approximation where it is cheap).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.llm.embeddings import Embedder, numpy
from tether.memory import fusion, schema
from tether.memory.ann_index import AnnIndex
from tether.memory.episodic_base import SqlEpisodicBase
from tether.memory.sql_kg import SqlKnowledgeGraph
from tether.memory.sql_tx import (
    MEMORY_COLUMNS,
    SQLITE,
    memory_of,
    memory_params,
    placeholders,
    scope_filter,
    scope_of,
)
from tether.memory.sqlite_db import SqliteThread
from tether.memory.types import Memory, MemoryScope
from tether.store.sqlite import rollback

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


INLINE_ROWS = 16
"""Batches up to this size are written on the event loop; bigger ones on the store's thread."""


class SqliteMemory(SqlEpisodicBase):
    """EpisodicMemory (this object) and KnowledgeGraph (``.kg``) in one SQLite file."""

    def __init__(
        self,
        path: str,
        *,
        embedder: Embedder | None = None,
        clock: Clock = SYSTEM_CLOCK,
        functional_relations: Collection[str] = (),
        exact_below: int = 2000,
        expansion_search: int = 128,
        save_every: int = 20_000,
    ) -> None:
        super().__init__(embedder=embedder, clock=clock)
        self.path = path
        self.exact_below = exact_below
        self.flavor = SQLITE
        self._thread = SqliteThread(path)
        self.kg = SqlKnowledgeGraph(
            self._thread.begin, SQLITE, clock=clock, functional_relations=functional_relations
        )
        self._expansion_search = expansion_search
        self._save_every = save_every
        self.ann: AnnIndex | None = None
        self.table = f"{self.flavor.prefix}memories"

    def __repr__(self) -> str:
        return f"SqliteMemory({self.path!r})"

    async def setup(self) -> None:
        """Create or upgrade the memory tables, check the embedder, open the vector index."""
        await self._thread.open()
        dims = self.embedder.dimensions
        name = self.embedder.name
        stored = await self._thread.call(lambda db: _migrate(db, dims, name))
        self._check_embedder(stored)
        self.ann = AnnIndex(
            self.path,
            dims,
            prefix=self.flavor.prefix,
            expansion_search=self._expansion_search,
            save_every=self._save_every,
        )
        ann = self.ann
        await self._thread.call(ann.open)

    async def close(self) -> None:
        """Save the vector index (so the next open replays nothing) and close the file."""
        if self.ann is not None:
            ann, self.ann = self.ann, None

            def persist(db: sqlite3.Connection) -> None:
                ann.catch_up(db, autosave=False)
                ann.try_save(db)  # a save that fails (a full disk) only costs a replay

            try:
                async with self._thread.lock:
                    await self._thread.call(persist)
            finally:
                await self._thread.close()
            return
        await self._thread.close()

    def _index(self) -> AnnIndex:
        if self.ann is None:
            from tether.core.errors import StoreError

            raise StoreError(f"{self!r} is not open: call `await memory.setup()` first")
        return self.ann

    # -- statements ------------------------------------------------------------------------
    async def _insert(self, memories: list[Memory], vectors: Vectors) -> None:
        ann = self._index()
        rows = [
            (*memory_params(m), v.astype("float32").tobytes())
            for m, v in zip(memories, vectors, strict=True)
        ]
        sql = f"INSERT INTO {self.table} ({MEMORY_COLUMNS}, embedding) VALUES ({placeholders(13)})"

        def write(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(sql, rows)
            except BaseException:
                rollback(db)
                raise
            db.execute("COMMIT")
            ann.catch_up(db, autosave=False)

        async with self._thread.lock:
            if len(rows) <= INLINE_ROWS:  # a few rows and their index inserts: well under 1 ms
                self._thread.now(write)
            else:
                await self._thread.call(write)
            if ann.due:  # saving a big index takes a while: on the thread
                await self._thread.call(ann.try_save)

    async def _candidates(
        self, qvec: Any, terms: list[str], scope: MemoryScope, pool: int
    ) -> tuple[list[str], list[str], dict[str, Memory]]:
        ann = self._index()
        where, params = scope_filter(scope, "m")

        def read(db: sqlite3.Connection) -> tuple[list[str], list[str], dict[str, Memory]]:
            ann.catch_up(db, autosave=False)
            vkeys = self._vector_keys(db, ann, qvec, scope, pool) if qvec is not None else []
            kkeys: list[int] = []
            kept = self._prune(db, terms, where, params)
            if kept:
                match = " OR ".join(f'"{t}"' for t in kept)
                kkeys = [
                    r[0]
                    for r in db.execute(
                        f"SELECT m.key FROM {self.table}_fts f JOIN {self.table} m "
                        f"ON m.key = f.rowid WHERE {self.table}_fts MATCH ? AND {where} "
                        f"ORDER BY bm25({self.table}_fts) LIMIT ?",
                        [match, *params, pool],
                    )
                ]
            keys = list(dict.fromkeys(vkeys + kkeys))
            by_key: dict[int, Memory] = {}
            for n in range(0, len(keys), 500):
                chunk = keys[n : n + 500]
                for row in db.execute(
                    f"SELECT key, {MEMORY_COLUMNS} FROM {self.table} WHERE key IN "
                    f"({placeholders(len(chunk))})",
                    chunk,
                ):
                    by_key[row[0]] = memory_of(row[1:])
            vids = [by_key[k].id for k in vkeys if k in by_key]
            kids = [by_key[k].id for k in kkeys if k in by_key]
            return vids, kids, {m.id: m for m in by_key.values()}

        async with self._thread.lock:
            found = self._thread.now(read)
            if ann.due:
                await self._thread.call(ann.try_save)
            return found

    def _prune(
        self, db: sqlite3.Connection, terms: list[str], where: str, params: list[Any]
    ) -> list[str]:
        """Drop the terms most of the scope's memories have (``fusion.prune_terms``), counted
        in the scope (``where``) alone: the store's counts would let another tenant's writes
        hide this tenant's memories. fts5vocab's store-wide counts bound the scope's from
        above, so a term that few memories of the store hold is kept without counting; the
        others are counted in the scope, stopping past the limit."""
        if not terms:
            return terms
        floor = fusion.MAX_DF * fusion.PRUNE_FROM  # no term under it is ever dropped
        keys = {t: fusion.fold(t).lower() for t in terms}  # as FTS5 indexes it
        words = sorted(set(keys.values()))
        store_df = dict(
            db.execute(
                f"SELECT term, doc FROM {self.table}_vocab WHERE term IN "
                f"({placeholders(len(words))})",
                words,
            ).fetchall()
        )
        suspects = [t for t in terms if store_df.get(keys[t], 0) > floor]
        if not suspects:
            return terms
        total = db.execute(f"SELECT COUNT(*) FROM {self.table} m WHERE {where}", params)
        n = int(total.fetchone()[0])
        limit = int(fusion.MAX_DF * n) + 1
        df: dict[str, float] = {}
        for t in suspects if n >= fusion.PRUNE_FROM else []:
            df[t] = db.execute(  # the scope's count, up to one past the limit
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {self.table}_fts f JOIN {self.table} m "
                f"ON m.key = f.rowid WHERE {self.table}_fts MATCH ? AND {where} LIMIT ?)",
                [f'"{t}"', *params, limit],
            ).fetchone()[0]
        return fusion.prune_terms(terms, df, n)

    def _vector_keys(
        self,
        db: sqlite3.Connection,
        ann: AnnIndex,
        qvec: Any,
        scope: MemoryScope,
        pool: int,
    ) -> list[int]:
        """The ``pool`` keys nearest ``qvec`` in the scope: exact for a small scope, else the
        HNSW index, asked for more until enough of its hits fall in the scope."""
        where, params = scope_filter(scope, "m")
        small = db.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {self.table} m WHERE {where} LIMIT ?)",
            [*params, self.exact_below + 1],
        ).fetchone()[0]
        if small <= self.exact_below:
            return self._exact_keys(db, ann, qvec, where, params, pool)
        n = min(pool * 2, len(ann))
        while True:
            keys = ann.search(qvec, n)
            kept = self._in_scope(db, keys, scope)
            if len(kept) >= pool or n >= len(ann):
                return kept[:pool]
            n = min(n * 4, len(ann))

    def _in_scope(self, db: sqlite3.Connection, keys: list[int], scope: MemoryScope) -> list[int]:
        """``keys`` that name memories in ``scope``, in order (looked up by primary key: a
        filter on the scope columns would lead SQLite to scan the tenant's index instead)."""
        inside: set[int] = set()
        for n in range(0, len(keys), 900):
            chunk = keys[n : n + 900]
            for key, *cols in db.execute(
                f"SELECT key, tenant, agent, run_id, thread_id FROM {self.table} "
                f"WHERE key IN ({placeholders(len(chunk))})",
                chunk,
            ):
                if scope.covers(scope_of(*cols)):
                    inside.add(key)
        return [k for k in keys if k in inside]

    def _exact_keys(
        self,
        db: sqlite3.Connection,
        ann: AnnIndex,
        qvec: Any,
        where: str,
        params: list[Any],
        pool: int,
    ) -> list[int]:
        """The ``pool`` keys in the scope nearest ``qvec``, by an exact scan (ties: the older
        memory first). The vectors come from the index's memory (a copy), not the table's
        blobs (reading 2,000 of those was 2.6 ms of a 3 ms search); a memory written by another
        process after the index caught up is read from the table."""
        np = numpy()
        keys = np.fromiter(
            (r[0] for r in db.execute(f"SELECT m.key FROM {self.table} m WHERE {where}", params)),
            dtype=np.uint64,
        )
        if not len(keys):
            return []
        keys.sort()
        matrix, held = ann.vectors(keys)
        if not held.all():
            missing = [int(k) for k in keys[~held]]
            blobs: dict[int, bytes] = {}
            for n in range(0, len(missing), 900):
                chunk = missing[n : n + 900]
                blobs.update(
                    db.execute(
                        f"SELECT key, embedding FROM {self.table} WHERE key IN "
                        f"({placeholders(len(chunk))})",
                        chunk,
                    ).fetchall()
                )
            for row in np.flatnonzero(~held):
                matrix[row] = np.frombuffer(blobs[int(keys[row])], dtype=np.float32)
        sims = matrix @ qvec
        order = np.argsort(-sims, kind="stable")[:pool]
        return [int(keys[i]) for i in order]

    async def _touch(self, ids: list[str], now: float) -> None:
        sql = (
            f"UPDATE {self.table} SET access_count = access_count + 1, "
            f"last_accessed_at = MAX(last_accessed_at, ?) WHERE id IN ({placeholders(len(ids))})"
        )
        async with self._thread.transaction() as tx:
            await tx.execute(sql, [now, *ids])

    async def _select(self, where: str, params: list[Any], order: str, limit: int) -> list[Memory]:
        sql = f"SELECT {MEMORY_COLUMNS} FROM {self.table} WHERE {where} {order} LIMIT {limit}"
        async with self._thread.transaction(write=False) as tx:
            return [memory_of(r) for r in await tx.fetch(sql, params)]

    async def _delete(self, ids: list[str], scope: MemoryScope) -> int:
        ann = self._index()
        where, params = scope_filter(scope)
        sql = f"DELETE FROM {self.table} WHERE {where} AND id IN ({placeholders(len(ids))})"

        def write(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                n = db.execute(sql, [*params, *ids]).rowcount
            except BaseException:
                rollback(db)
                raise
            db.execute("COMMIT")
            ann.catch_up(db, autosave=False)
            return int(n)

        async with self._thread.lock:
            if len(ids) <= INLINE_ROWS:
                n = self._thread.now(write)
            else:
                n = await self._thread.call(write)
            if ann.due:
                await self._thread.call(ann.try_save)
            return n

    async def _count(self, where: str, params: list[Any]) -> int:
        async with self._thread.transaction(write=False) as tx:
            rows = await tx.fetch(f"SELECT COUNT(*) FROM {self.table} WHERE {where}", params)
        return int(rows[0][0])


def _migrate(db: sqlite3.Connection, dimensions: int, embedder: str) -> tuple[int, str] | None:
    """Apply the memory plane's migrations; the dimensions the store's vectors have and the
    name of the embedder that made them (None for a new store, which then records
    ``dimensions`` and ``embedder``)."""
    p = SQLITE.prefix
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(schema.version_table(SQLITE))
        row = db.execute(f"SELECT MAX(version) FROM {p}memory_schema").fetchone()
        current = int(row[0] or 0)
        if current > schema.LATEST:
            from tether.core.errors import SchemaVersionError

            raise SchemaVersionError(
                f"the memory tables are at version {current}, newer than this tether "
                f"({schema.LATEST}); upgrade tether"
            )
        for version, statements in schema.migrations(SQLITE, dimensions):
            if version > current:
                for statement in statements:
                    db.execute(statement)
                db.execute(
                    f"INSERT INTO {p}memory_schema(version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
        got = dict(db.execute(f"SELECT name, value FROM {p}memory_meta").fetchall())
        if "dimensions" not in got:
            db.executemany(
                f"INSERT INTO {p}memory_meta(name, value) VALUES (?, ?)",
                [("dimensions", str(dimensions)), ("embedder", embedder)],
            )
    except BaseException:
        rollback(db)
        raise
    db.execute("COMMIT")
    return (int(got["dimensions"]), got.get("embedder", "")) if "dimensions" in got else None
