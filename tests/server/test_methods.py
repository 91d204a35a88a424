"""HEAD answers as GET without the body, OPTIONS answers 204 with ``Allow`` (both were 405),
through FastAPI's TestClient and through real uvicorn."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.server import apps
from tests.server.conftest import Server, bearer
from tests.server.uvicorn_thread import served
from tether.server.app import create_app
from tether.server.settings import ServerSettings


def _same_but_body(get: httpx.Response, head: httpx.Response) -> None:
    assert head.status_code == get.status_code, head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


def test_head_is_get_without_the_body(server: Server) -> None:
    c = server.client
    run_id = server.submit("echo", {"text": "hi"})
    server.wait(run_id, "COMPLETED")
    for path in (
        "/v1/runs",
        f"/v1/runs/{run_id}",
        f"/v1/runs/{run_id}/history",
        f"/v1/runs/{run_id}/events?limit=2",
        "/v1/workflows",
        "/healthz",
        "/openapi.json",
        "/runs",
    ):
        _same_but_body(c.get(path), c.head(path))
    # a problem too: the GET's status and headers, no body
    _same_but_body(c.get("/v1/runs/no-such-run"), c.head("/v1/runs/no-such-run"))
    _same_but_body(c.get("/v1/runs?limit=0"), c.head("/v1/runs?limit=0"))
    # an event stream: its headers, then it ends (a GET would stream on)
    head = c.head(f"/v1/runs/{run_id}/events/stream")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")
    assert c.head("/v1/stream/runs").headers["content-type"].startswith("text/event-stream")
    # a path without GET: 405 naming what it takes, bodiless
    no_get = c.head(f"/v1/runs/{run_id}/cancel")
    assert no_get.status_code == 405 and no_get.content == b""
    assert no_get.headers["allow"] == "POST, OPTIONS"
    assert c.head("/v1/no/such/route").status_code == 404


def test_options_names_the_methods(server: Server) -> None:
    c = server.client
    for path, allow in (
        ("/v1/runs", "GET, HEAD, POST, OPTIONS"),
        ("/v1/runs/some-run", "GET, HEAD, OPTIONS"),
        ("/v1/runs/some-run/cancel", "POST, OPTIONS"),
        ("/", "GET, HEAD, OPTIONS"),
    ):
        r = c.options(path)
        assert (r.status_code, r.headers.get("allow"), r.content) == (204, allow, b""), path
    # a CORS preflight gets the same: the server allows no other origin (no CORS headers)
    pre = c.options(
        "/v1/runs",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204
    assert not any(h.lower().startswith("access-control-") for h in pre.headers)
    unknown = c.options("/v1/no/such/route")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    # a known path asked with another method names HEAD and OPTIONS among what it takes
    assert c.delete("/v1/runs").headers["allow"] == "GET, HEAD, POST, OPTIONS"


def test_head_asks_for_the_key_as_get_does(keyed: Server) -> None:
    c = keyed.client
    assert c.head("/v1/runs").status_code == 401
    assert c.head("/v1/runs", headers=bearer(keyed.keys["a_submit"])).status_code == 403
    ok = c.head("/v1/runs", headers=bearer(keyed.keys["a_read"]))
    assert ok.status_code == 200 and ok.content == b""


def test_head_and_options_over_real_uvicorn(tmp_path: Path) -> None:
    settings = ServerSettings(
        store=f"sqlite:///{tmp_path / 'runs.db'}", workflows=apps.workflows, embedded_workers=1
    )
    with served(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as http:
        run_id = http.post("/v1/runs", json={"workflow": "ask", "input": {}}).json()["run_id"]
        while http.get(f"/v1/runs/{run_id}").json()["status"] != "ESCALATED":
            time.sleep(0.02)  # until it waits: a run still moving changes between GET and HEAD
        _same_but_body(http.get(f"/v1/runs/{run_id}"), http.head(f"/v1/runs/{run_id}"))
        # the run waits for a person: a GET of its stream would stay open
        head = http.head(f"/v1/runs/{run_id}/events/stream")
        assert head.status_code == 200 and head.content == b""
        assert http.head("/v1/stream/runs").status_code == 200
        opts = http.options(f"/v1/runs/{run_id}/resume")
        assert (opts.status_code, opts.headers["allow"]) == (204, "POST, OPTIONS")
        assert http.get("/healthz").status_code == 200  # the connection and server are fine
