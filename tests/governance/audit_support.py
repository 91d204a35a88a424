"""Real databases for the audit tests: a SQLite file or a fresh PostgreSQL schema, with raw
SQL access to tamper with the rows behind the store's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.graph.conftest import PG_DSN, pg_schema
from tether.store.protocol import RunStore
from tether.store.url import open_store


@dataclass
class Db:
    kind: str
    url: str
    schema: str | None = None

    def open(self) -> RunStore:
        return open_store(self.url)

    @property
    def table(self) -> str:
        if self.schema is None:
            return "tether_audit_log"
        return f'"{self.schema}".tether_audit_log'

    def sql(self, text: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run ``text`` (``{t}``: the audit table, ``?`` placeholders) outside the store."""
        text = text.replace("{t}", self.table)
        if self.kind == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                return conn.execute(text, params).fetchall()
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            cur = conn.execute(text.replace("?", "%s"), params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []


@pytest.fixture(name="db", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        yield Db("sqlite", f"sqlite:///{tmp_path / 'audit.db'}")
        return
    with pg_schema("tether_audit") as schema:
        yield Db("postgres", f"{PG_DSN}?schema={schema}", schema)
