"""The PII vault (``tether.store.pii_vault``) of the SQL backends: schema v14 and its
statements, written once for SQLite and PostgreSQL.

``assign_pii`` runs in one transaction holding the run's ``pii_keys`` row: ``FOR UPDATE`` on
PostgreSQL (the vault's writers of one run queue there), SQLite's ``BEGIN IMMEDIATE`` anyway.
Each value is then inserted with the next number of its type unless its digest is already
there, and read back.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock
from tether.core.errors import InvalidInputError
from tether.store.pii_vault import PiiRow, PiiSecret
from tether.store.sql_base import Dialect, Statements

if TYPE_CHECKING:
    from tether.store.sql_store import Tx


def migration(d: Dialect) -> list[str]:
    """Schema v14: ``pii_vault`` (sealed values per run) and ``pii_keys`` (a run's key check)."""
    p, r, b = d.prefix, d.real, d.blob
    return [
        f"""CREATE TABLE {p}pii_vault (
            run_id TEXT NOT NULL,
            entity_type TEXT NOT NULL,
            number INTEGER NOT NULL,
            digest TEXT NOT NULL,
            sealed {b} NOT NULL,
            created_at {r} NOT NULL,
            PRIMARY KEY (run_id, entity_type, number),
            UNIQUE (run_id, digest)
        )""",
        f"""CREATE TABLE {p}pii_keys (
            run_id TEXT PRIMARY KEY,
            key_check TEXT NOT NULL,
            created_at {r} NOT NULL
        )""",
    ]


def _statements(d: Dialect) -> dict[str, str]:
    p = d.prefix
    lock = " FOR UPDATE" if d.name == "postgres" else ""
    return {
        "put_check": (
            f"INSERT INTO {p}pii_keys (run_id, key_check, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id) DO NOTHING"
        ),
        "get_check": f"SELECT key_check FROM {p}pii_keys WHERE run_id = ?{lock}",
        # parameters: run, type, digest, sealed, now, run, type
        "insert": (
            f"INSERT INTO {p}pii_vault (run_id, entity_type, number, digest, sealed, created_at) "
            "SELECT ?, ?, COALESCE(MAX(number), 0) + 1, ?, ?, ? "
            f"FROM {p}pii_vault WHERE run_id = ? AND entity_type = ? "
            "ON CONFLICT (run_id, digest) DO NOTHING"
        ),
        "number": f"SELECT number FROM {p}pii_vault WHERE run_id = ? AND digest = ?",
        "get": (
            f"SELECT entity_type, number, digest, sealed FROM {p}pii_vault "
            "WHERE run_id = ? AND entity_type = ? AND number = ?"
        ),
        "delete_values": f"DELETE FROM {p}pii_vault WHERE run_id = ?",
        "delete_check": f"DELETE FROM {p}pii_keys WHERE run_id = ?",
    }


class SqlPiiVault:
    """``PiiVaultStore`` over a ``SqlStore``."""

    clock: Clock
    _sql: Statements

    if TYPE_CHECKING:  # provided by SqlStore

        async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

        def _transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    def _pii_sql(self, name: str) -> str:
        d = self._sql.dialect
        return self._sql.memoized(("pii", name), lambda: _statements(d)[name])

    async def pii_key_check(self, run_id: str, check: str) -> str:
        async with self._transaction() as tx:
            await tx.execute(self._pii_sql("put_check"), (run_id, check, self.clock.now()))
            ((stored,),) = await tx.fetch(self._pii_sql("get_check"), (run_id,))
        return str(stored)

    async def assign_pii(self, run_id: str, secrets: Sequence[PiiSecret]) -> list[int]:
        if not secrets:
            return []
        now, out = self.clock.now(), []
        async with self._transaction() as tx:
            if not await tx.fetch(self._pii_sql("get_check"), (run_id,)):  # locks the run's row
                raise InvalidInputError(
                    f"run {run_id!r} has no PII key check: call pii_key_check(run_id, check) "
                    "before assigning values (PiiVault does)"
                )
            for s in secrets:
                params = (run_id, s.entity_type, s.digest, s.sealed, now, run_id, s.entity_type)
                await tx.execute(self._pii_sql("insert"), params)
                ((number,),) = await tx.fetch(self._pii_sql("number"), (run_id, s.digest))
                out.append(int(number))
        return out

    async def get_pii(self, run_id: str, refs: Sequence[tuple[str, int]]) -> list[PiiRow]:
        out = []
        for row in await self._rows(run_id, refs):
            entity_type, number, digest, sealed = row
            out.append(PiiRow(entity_type, int(number), digest, bytes(sealed)))
        return out

    async def _rows(self, run_id: str, refs: Sequence[tuple[str, int]]) -> list[Any]:
        rows: list[Any] = []
        for entity_type, number in dict.fromkeys(refs):  # a handful per text
            rows += await self._fetch(self._pii_sql("get"), (run_id, entity_type, number))
        return rows

    async def delete_pii(self, run_id: str) -> int:
        async with self._transaction() as tx:
            n = await tx.execute(self._pii_sql("delete_values"), (run_id,))
            await tx.execute(self._pii_sql("delete_check"), (run_id,))
        return n
