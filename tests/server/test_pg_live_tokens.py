"""A server and a worker process on PostgreSQL: the tokens a model streams in the worker reach
the server's SSE stream of the run, in order, without ids, while the stored log keeps none."""

from __future__ import annotations

import signal

import httpx

from tests.server.live_app import REPLY
from tests.server.sse_client import frames
from tests.server.test_pg_server_kill import DEADLINE, _start_server, _tether, pg_url

__all__ = ["pg_url"]
APP = "tests.server.live_app:workflows"


def test_a_workers_streamed_tokens_reach_the_servers_stream(pg_url: str) -> None:
    server, base = _start_server(pg_url, APP)
    worker = _tether("worker", "--store", pg_url, "--app", APP, "--concurrency", "2")
    try:
        with httpx.Client(base_url=base, timeout=DEADLINE) as c:
            run_id = c.post("/v1/runs", json={"workflow": "talk", "input": {}}).json()["run_id"]
            with c.stream("GET", f"/v1/runs/{run_id}/events/stream") as resp:
                it = frames(resp)
                for f in it:
                    if f.event == "interrupt":
                        break
                r = c.post(f"/v1/runs/{run_id}/resume", json={"value": "go"})
                assert r.status_code == 202
                rest = [f for f in it if not f.comment]
            stored = c.get(f"/v1/runs/{run_id}/events").json()["items"]
    finally:
        for proc in (worker, server):
            proc.send_signal(signal.SIGTERM)
        for proc in (worker, server):
            proc.communicate(timeout=DEADLINE)
    tokens = [f for f in rest if f.event == "model_token"]
    assert "".join(f.data["data"]["delta"] for f in tokens) == REPLY
    assert all(f.id is None for f in tokens)
    kinds = [f.event for f in rest]
    assert kinds.index("model_token") < kinds.index("model_call") and kinds[-1] == "end"
    assert "model_token" not in {e["kind"] for e in stored}
