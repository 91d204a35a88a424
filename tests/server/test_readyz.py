"""``/readyz`` while the store cannot take the server's work: an SQLite disk that is full, a
PostgreSQL server that is down. 503 with a problem body saying why, 200 again once it clears;
``/healthz`` (liveness: the process is alive) stays 200 throughout.

Before, ``/readyz`` only read one run: reads go on from a full disk, so it answered ready while
every submit and every step commit failed, and a load balancer kept sending work there; with
PostgreSQL down it hung for the store's ``retry_for`` (30 s) before answering."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.durability.throwaway_pg import ThrowawayPostgres
from tests.server import apps
from tests.small_disk import fill
from tether.server import routes_meta
from tether.server.app import create_app
from tether.server.settings import ServerSettings


def not_ready(r: httpx.Response, cause: str) -> str:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/not-ready") and body["status"] == 503, body
    assert body["instance"] == "/readyz" and cause in body["detail"], body
    return str(body["detail"])


def test_readyz_is_503_while_the_sqlite_disk_is_full_and_200_once_there_is_room(
    small_disk: Path,
) -> None:
    db = small_disk / "runs.db"
    app = create_app(ServerSettings(store=f"sqlite:///{db}", workflows=apps.workflows))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        filler = fill(small_disk)
        detail = not_ready(client.get("/readyz"), "database or disk is full")
        assert str(db) in detail and "free some space" in detail
        assert client.get("/healthz").json()["status"] == "ok"
        r = client.post("/v1/runs", json={"workflow": "echo", "input": {"text": "x" * 4000}})
        assert r.status_code == 503, r.text  # what /readyz foretold
        filler.unlink()
        assert client.get("/readyz").json()["status"] == "ready"
        r = client.post("/v1/runs", json={"workflow": "echo", "input": {"text": "x" * 4000}})
        assert r.status_code == 202, r.text


def test_readyz_is_503_while_postgres_is_down_without_waiting_out_the_stores_retries(
    throwaway_pg: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store retries in place for ``retry_for`` (an hour here): ``/readyz`` answers after
    ``READY_TIMEOUT``, not then."""
    from tether.store.postgres import PostgresStore

    monkeypatch.setattr(routes_meta, "READY_TIMEOUT", 0.5)
    store = PostgresStore(throwaway_pg.dsn, schema=f"t_{uuid.uuid4().hex[:10]}", retry_for=3600)
    app = create_app(ServerSettings(store=store, workflows=apps.workflows))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        throwaway_pg.stop()
        try:
            not_ready(client.get("/readyz"), "did not answer within 0.5 s")
            assert client.get("/healthz").json()["status"] == "ok"
        finally:
            throwaway_pg.start()
        assert client.get("/readyz").json()["status"] == "ready"
