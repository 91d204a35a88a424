"""A real ``tether serve`` app (create_app, SQLite, an embedded worker) served by uvicorn on
a free 127.0.0.1 port, on a thread of its own, for the client tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.server.apps import workflows
from tests.server.live import ServerThread
from tether.server.app import create_app
from tether.server.keys import create_key
from tether.server.settings import ServerSettings
from tether.store.sqlite import SqliteStore


@dataclass
class LiveServer:
    url: str
    port: int
    db: Path
    keys: dict[str, str] = field(default_factory=dict)
    """name -> API key (empty: local mode, no key needed)."""


async def _make_keys(db: Path, specs: dict[str, tuple[str, list[str]]]) -> dict[str, str]:
    store = SqliteStore(db)
    await store.setup()
    try:
        out: dict[str, str] = {}
        for name, (tenant, scopes) in specs.items():
            _, key = await create_key(store, tenant, scopes, name)
            out[name] = key
        return out
    finally:
        await store.close()


def _serve(db: Path, keys: dict[str, str]) -> Iterator[LiveServer]:
    settings = ServerSettings(
        store=f"sqlite:///{db}", workflows=workflows, embedded_workers=4, sse_heartbeat=1.0
    )
    with ServerThread(create_app(settings)) as port:
        yield LiveServer(f"http://127.0.0.1:{port}", port, db, keys)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """Local mode: no keys."""
    yield from _serve(tmp_path / "serve.db", {})


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[LiveServer]:
    """Two tenants' keys: ``a`` (read, submit, approve), ``a_read`` (read) and ``b``."""
    db = tmp_path / "keyed.db"
    keys = asyncio.run(
        _make_keys(
            db,
            {
                "a": ("tenant-a", ["read", "submit", "approve"]),
                "a_read": ("tenant-a", ["read"]),
                "b": ("tenant-b", ["read", "submit"]),
            },
        )
    )
    yield from _serve(db, keys)
