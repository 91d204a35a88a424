"""Every error is RFC 9457 problem JSON: validation, unknown routes and methods, bad cursors,
oversized bodies, timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from tests.server.conftest import Server
from tether.server import paging
from tether.server.limits import RequestLimits
from tether.server.problems import install_problem_handlers

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = dict(r.json())
    assert set(body) >= PROBLEM_KEYS and body["status"] == status
    assert body["type"].startswith("https://") and body["detail"]
    return body


def test_validation_errors_list_each_problem(server: Server) -> None:
    c = server.client
    body = problem(c.post("/v1/runs", json={"workflow": 3, "input": [], "surprise": 1}), 422)
    locs = {e["loc"] for e in body["errors"]}
    assert {"body.workflow", "body.input", "body.surprise"} <= locs
    assert body["instance"] == "/v1/runs"
    not_json = problem(  # a 400 as docs/server.md says (it was a 422 "validation")
        c.post("/v1/runs", content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    assert "not JSON" in not_json["detail"]
    problem(c.post("/v1/runs"), 422)
    problem(c.post("/v1/runs", json={"workflow": "echo", "priority": 2**40}), 422)
    problem(c.get("/v1/runs", params={"limit": 0}), 422)
    problem(c.get("/v1/runs", params={"limit": 501}), 422)
    problem(c.get("/v1/runs", params={"status": "SLEEPING"}), 422)
    problem(c.get("/v1/approvals", params={"status": "maybe"}), 422)
    problem(c.post("/v1/runs/x/fork", json={"step": -1}), 422)


def test_unknown_routes_and_methods(server: Server) -> None:
    c = server.client
    assert "no route GET /v1/nothing/here" in problem(c.get("/v1/nothing/here"), 404)["detail"]
    # a known path asked with another method: 405 naming what it takes (was a 404 "no route")
    not_allowed = c.delete("/v1/runs")
    assert "GET, HEAD, POST, OPTIONS" in problem(not_allowed, 405)["detail"]
    assert not_allowed.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    problem(c.put("/v1/runs/some-run/cancel"), 405)
    problem(c.delete("/v1/no/such/thing"), 404)  # the API's catch-all answers for /v1
    problem(c.get("/nothing-at-all"), 404)
    problem(c.put("/healthz"), 405)


def test_bad_cursors_are_422_never_500(server: Server) -> None:
    c = server.client
    run_id = server.submit("echo", {"text": "a"})
    server.wait(run_id, "COMPLETED")
    for cursor in ("%%%", "bm90IGpzb24", "WyJzdGVwcyIsMV0"):  # garbage, not JSON, another list's
        problem(c.get("/v1/runs", params={"cursor": cursor}), 422)
    problem(c.get(f"/v1/runs/{run_id}/history", params={"cursor": "WyJydW5zIiwieCJd"}), 422)
    problem(c.get(f"/v1/runs/{run_id}/events", params={"cursor": "x"}), 422)
    gone = "WyJydW5zIiwibm8tc3VjaC1ydW4iXQ"  # ["runs","no-such-run"]
    assert "first page" in problem(c.get("/v1/runs", params={"cursor": gone}), 422)["detail"]
    r = c.get(f"/v1/runs/{run_id}/events/stream", headers={"Last-Event-ID": "abc"})
    problem(r, 422)
    for odd in ("1_0", "+2", "-1", "1e3", str(2**70)):  # '1_0' read as 10 skipped 10 events
        r = c.get(f"/v1/runs/{run_id}/events/stream", headers={"Last-Event-ID": odd})
        problem(r, 422)
    # well-formed cursors holding a number no store can bind were a 500 (OverflowError)
    for kind in ("steps", "events"):
        huge = paging.encode(kind, 10**20)
        path = "history" if kind == "steps" else "events"
        problem(c.get(f"/v1/runs/{run_id}/{path}", params={"cursor": huge}), 422)
    last = paging.encode("events", paging.MAX_POSITION)  # the largest a cursor holds: the end
    assert c.get(f"/v1/runs/{run_id}/events", params={"cursor": last}).json()["items"] == []
    # hand-made run cursors holding what no id holds were a 500 (UnicodeEncodeError; a
    # DataError for a NUL on PostgreSQL)
    for odd in ("\ud800", "a\x00b", "", "x" * 201, "a b"):
        problem(c.get("/v1/runs", params={"cursor": paging.encode("runs", odd)}), 422)


def test_a_nul_in_a_text_field_or_a_filter_is_a_422(server: Server) -> None:
    """On PostgreSQL these were 500s (DataError: text cannot hold NUL)."""
    c = server.client
    for field in ("idempotency_key", "queue", "thread_id"):
        body = {"workflow": "echo", "input": {"text": "a"}, field: "x\x00y"}
        assert "NUL" in problem(c.post("/v1/runs", json=body), 422)["detail"]
    for name in ("workflow", "thread_id", "parent_run_id"):
        assert "NUL" in problem(c.get("/v1/runs", params={name: "a\x00b"}), 422)["detail"]
    problem(c.get("/v1/approvals", params={"run_id": "a\x00b"}), 422)
    run_id = server.submit("ask", {"question": "q"})
    server.wait(run_id, "ESCALATED")
    problem(c.post(f"/v1/runs/{run_id}/cancel", json={"reason": "a\x00b"}), 422)
    assert c.get(f"/v1/runs/{run_id}").json()["status"] == "ESCALATED"


def test_a_body_over_the_limit_is_a_413(tmp_path: Any) -> None:
    from tests.server.conftest import open_server

    for srv in open_server(tmp_path, max_body_bytes=1000):
        c = srv.client
        big = {"workflow": "echo", "input": {"text": "x" * 2000}}
        assert "larger than 1000 bytes" in problem(c.post("/v1/runs", json=big), 413)["detail"]

        def chunks() -> Any:  # no Content-Length: counted as it streams in
            yield b'{"workflow": "echo", "input": {"text": "'
            for _ in range(40):
                yield b"y" * 100
            yield b'"}}'

        r = c.post("/v1/runs", content=chunks(), headers={"content-type": "application/json"})
        problem(r, 413)
        assert c.get("/v1/runs").json()["items"] == []  # nothing was submitted
        ok = c.post("/v1/runs", json={"workflow": "echo", "input": {"text": "small"}})
        assert ok.status_code == 202


async def test_a_request_over_the_timeout_is_a_504_and_streams_are_exempt() -> None:
    never = asyncio.Event()
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await never.wait()
        return {}

    @app.get("/v1/stream/x")
    async def streamish() -> dict[str, str]:
        await asyncio.sleep(0.2)  # longer than the timeout, and exempt
        return {"ok": "yes"}

    limited = RequestLimits(app, max_body_bytes=100, timeout=0.05)
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = problem(await client.get("/slow"), 504)
        assert "longer than 0.05 s" in body["detail"]
        assert (await client.get("/v1/stream/x")).json() == {"ok": "yes"}


def test_an_unknown_query_parameter_is_a_422_naming_the_known_ones(server: Server) -> None:
    body = problem(server.client.get("/v1/runs", params={"stauts": "FAILED"}), 422)
    assert "'stauts'" in body["detail"] and "status" in body["detail"]
    assert server.client.get("/v1/runs", params={"status": "FAILED"}).status_code == 200


def test_an_empty_status_filter_is_a_422_not_every_run(server: Server) -> None:
    """``?status=`` (a script's empty variable) or ``?status=,`` listed runs of every status."""
    c = server.client
    assert c.post("/v1/runs", json={"workflow": "echo", "input": {"text": "a"}}).status_code == 202
    for query in ("status=", "status=,", "status=%20"):
        body = problem(c.get(f"/v1/runs?{query}"), 422)
        assert body["type"].endswith("/invalid-status") and "no status" in body["detail"]
    for query, kind in (
        ("status=bogus", "/invalid-status"),
        ("workflow=", "/validation"),
        ("limit=-1", "/validation"),
        ("thread=t1", "/unknown-query-parameter"),
        ("thread_id=", "/validation"),
    ):
        assert problem(c.get(f"/v1/runs?{query}"), 422)["type"].endswith(kind), query
    assert c.get("/v1/runs?status=PLANNED,,EXECUTING").status_code == 200
