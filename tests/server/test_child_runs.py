"""A subgraph's child run over HTTP: its own id is a URL path segment and its tenant is its
parent's, so the parent's API key opens it, its events and its history like any run.

Before: child ids were ``{parent}/{task}``, and ``GET /v1/runs/{child}`` (and every other route
of the child) answered 404 "no route" (the dashboard listed children it could not open); the
child had no tenant, so the parent's tenant could not even list it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import TENANT_KEYS, Server, bearer, make_keys
from tether import END, START, Graph
from tether.server.app import create_app
from tether.server.settings import ServerSettings


class Note(TypedDict, total=False):
    text: str
    answer: str


kid_graph = Graph(Note, name="kid")
kid_graph.add_node("write", lambda s: {"answer": f"kid read {s.get('text', '')}"})
kid_graph.add_edge(START, "write").add_edge("write", END)
kid = kid_graph.compile()
parent_graph = Graph(Note, name="parent")
parent_graph.add_node("ask kid", kid).add_edge(START, "ask kid").add_edge("ask kid", END)
parent = parent_graph.compile()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    db = tmp_path / "runs.db"
    keys = make_keys(db, TENANT_KEYS)
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=[parent, kid], embedded_workers=2)
    with TestClient(create_app(settings)) as client:
        yield Server(client, db, keys)


def test_a_child_run_opens_like_any_run_for_its_tenant(server: Server) -> None:
    c, acme, globex = server.client, bearer(server.keys["a_all"]), bearer(server.keys["b_all"])
    run_id = server.submit("parent", {"text": "hi"}, key="a_all")
    done = server.wait(run_id, "COMPLETED", key="a_all")
    assert done["state"]["answer"] == "kid read hi"
    listed = c.get("/v1/runs", params={"parent_run_id": run_id}, headers=acme).json()["items"]
    assert [r["workflow"] for r in listed] == ["kid"]
    child = listed[0]["run_id"]
    # the node's name has a space: the id spells it URL-safe, and stays one path segment
    assert child.startswith(f"{run_id}.1:ask_kid:0-") and "/" not in child
    for path in ("", "/events", "/history", "/state"):
        r = c.get(f"/v1/runs/{child}{path}", headers=acme)
        assert r.status_code == 200, (path, r.text)
    run = c.get(f"/v1/runs/{child}", headers=acme).json()
    assert (run["tenant"], run["parent_run_id"], run["status"]) == ("acme", run_id, "COMPLETED")
    assert c.get(f"/v1/runs/{child}", headers=globex).status_code == 404
