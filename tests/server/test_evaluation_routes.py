"""``GET /v1/runs/{id}/mindlog``, ``GET /v1/runs/{id}/drift``, ``GET /v1/kpis`` and the KPI
gauges of ``/metrics``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.server.conftest import Server, bearer
from tether.evaluation import DriftMonitor, check_drift
from tether.llm.embeddings import HashingEmbedder
from tether.server import routes_metrics
from tether.store.sqlite import SqliteStore


def test_mind_log_of_a_run_and_a_404_for_an_unknown_one(server: Server) -> None:
    run_id = server.submit("echo", {"text": "hi"})
    server.wait(run_id, "COMPLETED")
    r = server.client.get(f"/v1/runs/{run_id}/mindlog")
    assert r.status_code == 200, r.text
    log = r.json()
    assert log["run_id"] == run_id and log["workflow"] == "echo"
    missing = server.client.get("/v1/runs/01zzzzzzzzzzzzzzzzzzzzzzzz/mindlog")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_kpis_count_the_runs_of_a_period_and_a_workflow(server: Server) -> None:
    t0 = time.time() - 1
    done = [server.submit("echo", {"text": str(i)}) for i in range(3)]
    for run_id in done:
        server.wait(run_id, "COMPLETED")
    parked = server.submit("ask", {"question": "q"})
    server.wait(parked, "ESCALATED")
    every = server.client.get("/v1/kpis", params={"since": t0}).json()
    assert every["overall"]["runs"] == 4 and every["overall"]["completed"] == 3
    echo = server.client.get("/v1/kpis", params={"workflow": "echo", "since": t0}).json()
    assert echo["overall"]["runs"] == 3 and echo["overall"]["escalated_runs"] == 0
    later = server.client.get("/v1/kpis", params={"since": time.time() + 60}).json()
    assert later["overall"]["runs"] == 0
    bad = server.client.get("/v1/kpis", params={"since": 10, "until": 5})
    assert bad.status_code == 422 and "until" in bad.json()["detail"]
    assert server.client.get("/v1/kpis", params={"tenant": "x"}).status_code == 422
    metrics = server.client.get("/metrics").text
    assert 'tether_kpi_runs{workflow="echo"} 3.0' in metrics


def test_mind_log_is_the_tenant_s_and_kpis_need_admin(keyed: Server) -> None:
    c = keyed.client
    run_id = keyed.submit("echo", {"text": "a"}, key="a_all")
    keyed.wait(run_id, "COMPLETED", key="a_all")
    assert c.get(f"/v1/runs/{run_id}/mindlog", headers=bearer(keyed.keys["a_read"])).is_success
    other = c.get(f"/v1/runs/{run_id}/mindlog", headers=bearer(keyed.keys["b_all"]))
    assert other.status_code == 404  # another tenant's run does not exist for it
    assert c.get("/v1/kpis", headers=bearer(keyed.keys["a_all"])).status_code == 403
    assert c.get("/v1/kpis", headers=bearer(keyed.keys["admin"])).status_code == 200
    assert "tether_kpi_runs" not in c.get("/metrics", headers=bearer(keyed.keys["a_read"])).text
    assert "tether_kpi_runs" in c.get("/metrics", headers=bearer(keyed.keys["admin"])).text


def test_a_single_valued_query_parameter_given_twice_is_a_422(server: Server) -> None:
    r = server.client.get("/v1/runs", params=[("workflow", "echo"), ("workflow", "ask")])
    assert r.status_code == 422 and "'workflow'" in r.json()["detail"]
    assert r.json()["type"].endswith("/repeated-query-parameter")
    both = server.client.get("/v1/runs", params=[("status", "FAILED"), ("status", "COMPLETED")])
    assert both.status_code == 200  # status is a list: it may repeat
    assert server.client.get("/v1/kpis", params=[("since", "1"), ("since", "2")]).status_code == 422


def test_kpi_gauges_are_recomputed_only_after_their_refresh_interval(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_metrics, "KPI_REFRESH", 3600.0)
    first = server.submit("echo", {"text": "1"})
    server.wait(first, "COMPLETED")
    assert 'tether_kpi_runs{workflow="echo"} 1.0' in server.client.get("/metrics").text
    second = server.submit("echo", {"text": "2"})
    server.wait(second, "COMPLETED")
    # within the interval the computed gauges are served again (a scrape stays cheap)
    assert 'tether_kpi_runs{workflow="echo"} 1.0' in server.client.get("/metrics").text
    monkeypatch.setattr(routes_metrics, "KPI_REFRESH", 0.0)
    assert 'tether_kpi_runs{workflow="echo"} 2.0' in server.client.get("/metrics").text


def _check(db: Path, run_id: str, threshold: float) -> bool:
    """``check_drift`` of a finished run, from another connection to the server's store."""

    async def go() -> bool:
        store = SqliteStore(db)
        await store.setup()
        try:
            monitor = DriftMonitor(HashingEmbedder(), threshold=threshold)
            return (await check_drift(store, run_id, monitor=monitor)).drifted
        finally:
            await store.close()

    return asyncio.run(go())


def test_drift_flags_of_a_run_over_http(server: Server) -> None:
    """A run checked and found drifting shows its flag with the texts compared; one checked
    and found on topic, and one never checked, show none; an unknown run is a 404."""
    c = server.client
    runs = []
    asked = [
        ("how tall is mount everest", "bananas"),
        ("how tall is mount everest", "mount everest is 8849 m tall"),
        ("unchecked", "bananas"),
    ]
    for question, told in asked:
        run_id = server.submit("ask", {"question": question})
        server.wait(run_id, "ESCALATED")
        assert c.post(f"/v1/runs/{run_id}/resume", json={"value": told}).status_code < 300
        server.wait(run_id, "COMPLETED")
        runs.append(run_id)
    drifting, on_topic, unchecked = runs
    assert _check(server.db, drifting, threshold=0.99)  # goal and answer share few words
    assert not _check(server.db, on_topic, threshold=0.2)
    flagged = c.get(f"/v1/runs/{drifting}/drift").json()
    assert flagged["run_id"] == drifting and flagged["drifted"] is True
    (flag,) = flagged["flags"]
    assert flag["kind"] == "drift.goal_output" and flag["similarity"] < flag["threshold"] == 0.99
    assert "mount everest" in str(flag["data"]) and "bananas" in str(flag["data"])
    for run_id in (on_topic, unchecked):
        assert c.get(f"/v1/runs/{run_id}/drift").json() == {
            "run_id": run_id,
            "drifted": False,
            "flags": [],
        }
    missing = c.get("/v1/runs/01zzzzzzzzzzzzzzzzzzzzzzzz/drift")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_drift_flags_are_the_tenant_s(keyed: Server) -> None:
    c = keyed.client
    run_id = keyed.submit("echo", {"text": "a"}, key="a_all")
    keyed.wait(run_id, "COMPLETED", key="a_all")
    mine = c.get(f"/v1/runs/{run_id}/drift", headers=bearer(keyed.keys["a_read"]))
    assert mine.status_code == 200 and mine.json()["flags"] == []
    other = c.get(f"/v1/runs/{run_id}/drift", headers=bearer(keyed.keys["b_all"]))
    assert other.status_code == 404
