"""PostgreSQL plumbing for the memory store: transactions and single statements with ``?``
placeholders over the run store's connection pool, and the pgvector check.

The pool's connections run in autocommit, so a single statement (``statement()``) is its own
transaction and costs one round trip; ``transaction()`` adds a BEGIN and a COMMIT round trip and
is only for work that needs several statements to be atomic, or ``SET LOCAL``."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from tether.core.errors import ConfigurationError, StoreError
from tether.store.pg_pool import ConnectionPool

PGVECTOR_HINT = (
    "install pgvector on that server (https://github.com/pgvector/pgvector: e.g. `apt install "
    "postgresql-16-pgvector`, or an image such as pgvector/pgvector:pg16), or for tests use the "
    "PyPI package `pgserver`, which ships PostgreSQL 16 with pgvector; or use a SQLite memory "
    "store (sqlite:///path.db)"
)


class VectorParam:
    """A vector sent to the server in pgvector's binary form (two 16-bit words, the dimensions
    and 0, then big-endian float4s): packing it costs microseconds where the text form
    ``[0.1,...]`` costs a few hundred (and the server's parse of as many decimal numbers).
    Its type is left to the server (oid 0): write the parameter as ``CAST(? AS vector)``."""

    __slots__ = ("data",)

    def __init__(self, vector: Any) -> None:
        import numpy as np

        values = np.asarray(vector, dtype=">f4").ravel()
        self.data = struct.pack(">HH", values.shape[0], 0) + values.tobytes()


class _VectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return bytes(obj.data)


psycopg.adapters.register_dumper(VectorParam, _VectorDumper)


def pg_sql(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (the memory SQL has no literal ``%`` or ``?``)."""
    return sql.replace("?", "%s")


class PgTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = await self.conn.execute(pg_sql(sql), list(params))
        return list(await cur.fetchall())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self.conn.execute(pg_sql(sql), list(params))
        return int(cur.rowcount)


@contextlib.asynccontextmanager
async def store_errors() -> AsyncIterator[None]:
    """psycopg's errors as StoreError (the memory plane's callers catch tether's errors)."""
    try:
        yield
    except StoreError:
        raise
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL memory store: {exc}") from exc


class PgDatabase:
    """The pool, single statements, and transactions that name a lock (an advisory lock held
    until commit). ``synchronous_commit=False`` sets the sessions' ``synchronous_commit = off``
    (a commit survives crashes of tether's processes, not of the database server's machine)."""

    def __init__(
        self,
        dsn: str,
        *,
        max_size: int = 8,
        connect_timeout: float = 10.0,
        synchronous_commit: bool = True,
    ) -> None:
        self.pool = ConnectionPool(
            dsn,
            max_size=max_size,
            connect_timeout=connect_timeout,
            synchronous_commit=synchronous_commit,
        )

    @contextlib.asynccontextmanager
    async def transaction(
        self, lock: str | None = None, *, snapshot: bool = False
    ) -> AsyncIterator[PgTx]:
        """``snapshot``: a read-only transaction whose statements all see one snapshot
        (``REPEATABLE READ``; under the default ``READ COMMITTED`` each statement sees what was
        committed when it began)."""
        async with store_errors(), self.pool.transaction() as conn:
            tx = PgTx(conn)
            if snapshot:
                await tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if lock is not None:
                await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 7))", [lock])
            yield tx

    @contextlib.asynccontextmanager
    async def statement(self) -> AsyncIterator[PgTx]:
        """A connection outside any transaction: each statement sent on it commits on its own
        (atomically), in one round trip instead of BEGIN, the statement and COMMIT."""
        async with store_errors(), self.pool.connection() as conn:
            yield PgTx(conn)

    def begin(self, lock: str | None) -> contextlib.AbstractAsyncContextManager[PgTx]:
        """For the knowledge graph: a transaction holding ``lock``, or (None) a read that sees
        one snapshot (a multi-hop walk's levels never mix two versions of the graph)."""
        return self.transaction(lock, snapshot=lock is None)

    async def ensure_pgvector(self, where: str) -> None:
        """Create the ``vector`` extension, or say clearly why it cannot be had."""
        async with self.transaction() as tx:
            rows = await tx.fetch(
                "SELECT installed_version FROM pg_available_extensions WHERE name = 'vector'"
            )
        if not rows:
            raise ConfigurationError(
                f"the PostgreSQL server at {where} has no pgvector extension, which the memory "
                f"store needs for vector search; {PGVECTOR_HINT}"
            )
        if rows[0][0] is None:
            try:
                async with self.transaction("tether-memory-schema") as tx:
                    await tx.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
            except StoreError as exc:
                raise ConfigurationError(
                    f"pgvector is available on {where} but could not be enabled ({exc}); run "
                    "`CREATE EXTENSION vector;` in that database as a superuser or its owner"
                ) from exc

    async def close(self) -> None:
        await self.pool.close()
