"""Fixtures of the server tests: an app on a real SQLite store with an embedded worker, served
through FastAPI's TestClient (the route tests), API keys, and polling helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server import apps
from tether.server.app import create_app
from tether.server.keys import create_key
from tether.server.settings import ServerSettings
from tether.store.sqlite import SqliteStore

DEADLINE = 60.0
"""Seconds a poll waits before the test fails: only bounds a hang."""


def make_keys(db: Path, specs: dict[str, tuple[str, list[str]]]) -> dict[str, str]:
    """Create API keys in the store at ``db``: ``{name: (tenant, scopes)}`` -> ``{name: key}``."""

    async def go() -> dict[str, str]:
        store = SqliteStore(db)
        await store.setup()
        try:
            out = {}
            for name, (tenant, scopes) in specs.items():
                _, out[name] = await create_key(store, tenant, scopes, name)
            return out
        finally:
            await store.close()

    return asyncio.run(go())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_for(
    client: TestClient,
    run_id: str,
    done: Callable[[dict[str, Any]], bool],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll ``GET /v1/runs/{run_id}`` until ``done(run)``."""
    deadline = time.monotonic() + DEADLINE
    while True:
        r = client.get(f"/v1/runs/{run_id}", headers=headers or {})
        assert r.status_code == 200, r.text
        run = r.json()
        if done(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} never got there: {run['status']}"
        time.sleep(0.02)


def status_in(*statuses: str) -> Callable[[dict[str, Any]], bool]:
    return lambda run: run["status"] in statuses


@dataclass
class Server:
    client: TestClient
    db: Path
    keys: dict[str, str] = field(default_factory=dict)

    def submit(
        self, workflow: str, input: dict[str, Any], key: str | None = None, **kw: Any
    ) -> str:
        headers = bearer(self.keys[key]) if key else {}
        r = self.client.post(
            "/v1/runs", json={"workflow": workflow, "input": input, **kw}, headers=headers
        )
        assert r.status_code == 202, r.text
        return str(r.json()["run_id"])

    def wait(self, run_id: str, *statuses: str, key: str | None = None) -> dict[str, Any]:
        headers = bearer(self.keys[key]) if key else None
        return wait_for(self.client, run_id, status_in(*statuses), headers)


def open_server(
    tmp_path: Path, keys: dict[str, tuple[str, list[str]]] | None = None, **settings: Any
) -> Iterator[Server]:
    db = tmp_path / "runs.db"
    made = make_keys(db, keys) if keys else {}
    opts: dict[str, Any] = {"embedded_workers": 8, "sse_heartbeat": 1.0, **settings}
    app = create_app(ServerSettings(store=f"sqlite:///{db}", workflows=apps.workflows, **opts))
    with TestClient(app) as client:
        yield Server(client, db, made)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """Local mode (no key), SQLite, an embedded worker."""
    yield from open_server(tmp_path)


TENANT_KEYS: dict[str, tuple[str, list[str]]] = {
    "a_all": ("acme", ["read", "submit", "approve"]),
    "a_read": ("acme", ["read"]),
    "a_submit": ("acme", ["submit"]),
    "a_approve": ("acme", ["approve"]),
    "b_all": ("globex", ["read", "submit", "approve"]),
    "admin": ("ops", ["admin"]),
}


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Server]:
    """API keys of two tenants (acme, globex) and an admin."""
    yield from open_server(tmp_path, TENANT_KEYS)
