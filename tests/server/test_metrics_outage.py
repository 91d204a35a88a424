"""``GET /metrics`` while the store cannot answer: the process's own counters (what a scrape
during an outage is for) with ``tether_store_up 0``, not a 503 with nothing, as a worker's
probe already does; once the store is back, its gauges again with ``tether_store_up 1``."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.durability.throwaway_pg import ThrowawayPostgres
from tests.server import apps
from tether.server.app import create_app
from tether.server.settings import ServerSettings


def test_metrics_are_served_through_a_store_outage(throwaway_pg: ThrowawayPostgres) -> None:
    from tether.store.postgres import PostgresStore

    store = PostgresStore(throwaway_pg.dsn, schema=f"m_{uuid.uuid4().hex[:10]}", retry_for=0.2)
    app = create_app(ServerSettings(store=store, workflows=apps.workflows, embedded_workers=0))
    with TestClient(app, raise_server_exceptions=False) as client:
        up = client.get("/metrics")
        assert up.status_code == 200, up.text
        assert "tether_store_up 1.0" in up.text and "tether_runs{" in up.text
        throwaway_pg.stop()
        try:
            down = client.get("/metrics")
        finally:
            throwaway_pg.start()
        assert down.status_code == 200, down.text
        assert "tether_store_up 0.0" in down.text
        assert "tether_runs{" not in down.text  # nothing read from the store is made up
        assert "tether_step_seconds" in down.text  # the process's own counters
        again = client.get("/metrics")
        assert again.status_code == 200 and "tether_store_up 1.0" in again.text, again.text
