"""PostgreSQL plumbing for the memory store: transactions with ``?`` placeholders over the run
store's connection pool, and the pgvector check."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tether.core.errors import ConfigurationError, StoreError
from tether.store.pg_pool import ConnectionPool

PGVECTOR_HINT = (
    "install pgvector on that server (https://github.com/pgvector/pgvector: e.g. `apt install "
    "postgresql-16-pgvector`, or an image such as pgvector/pgvector:pg16), or for tests use the "
    "PyPI package `pgserver`, which ships PostgreSQL 16 with pgvector; or use a SQLite memory "
    "store (sqlite:///path.db)"
)


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


class PgDatabase:
    """The pool, and transactions that name a lock (an advisory lock held until commit)."""

    def __init__(self, dsn: str, *, max_size: int = 8, connect_timeout: float = 10.0) -> None:
        self.pool = ConnectionPool(dsn, max_size=max_size, connect_timeout=connect_timeout)

    @contextlib.asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[PgTx]:
        try:
            async with self.pool.transaction() as conn:
                tx = PgTx(conn)
                if lock is not None:
                    await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 7))", [lock])
                yield tx
        except StoreError:
            raise
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise StoreError(f"PostgreSQL memory store: {exc}") from exc
            raise

    def begin(self, lock: str | None) -> contextlib.AbstractAsyncContextManager[PgTx]:
        return self.transaction(lock)

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
