"""A submit sent again with its idempotency key: the very same request is the first run
(202, ``Idempotent-Replayed``); the key with another metadata, queue or priority is a 409
problem naming the fields that differ (it returned the first run silently)."""

from __future__ import annotations

from tests.server.conftest import Server
from tests.server.test_problems import problem
from tether.graph.submission import IDEMPOTENCY_KEY

FIRST = {
    "workflow": "echo",
    "input": {"text": "hi"},
    "idempotency_key": "order-7",
    "metadata": {"owner": "ops"},
    "queue": "default",
    "priority": 2,
}


def test_a_key_sent_again_with_other_parameters_is_a_409_naming_them(server: Server) -> None:
    c = server.client
    first = c.post("/v1/runs", json=FIRST)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    again = c.post("/v1/runs", json=FIRST)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["run_id"] == first.json()["run_id"]
    for change, fields in (
        ({"metadata": {"owner": "dev"}}, ["metadata"]),
        ({"queue": "slow"}, ["queue"]),
        ({"priority": 5}, ["priority"]),
        ({"metadata": {}, "priority": 0, "queue": "slow"}, ["metadata", "queue", "priority"]),
    ):
        body = problem(c.post("/v1/runs", json={**FIRST, **change}), 409)
        assert body["type"].endswith("/idempotency-conflict")
        assert body["fields"] == fields
        assert first.json()["run_id"] in body["detail"] and "new key" in body["detail"]
    other_input = problem(c.post("/v1/runs", json={**FIRST, "input": {"text": "ho"}}), 409)
    assert "fields" not in other_input and "different input" in other_input["detail"]
    assert len(c.get("/v1/runs").json()["items"]) == 1


def test_the_runtimes_fingerprints_cannot_be_sent_as_metadata(server: Server) -> None:
    body = {"workflow": "echo", "input": {}, "metadata": {IDEMPOTENCY_KEY: {"queue": "x"}}}
    assert IDEMPOTENCY_KEY in problem(server.client.post("/v1/runs", json=body), 422)["detail"]


def test_metadata_named_idempotency_is_a_clients_own_as_before(server: Server) -> None:
    # a client's "idempotency" entry was taken at 202 before the fingerprints came, then
    # refused (422 reserved-metadata): the fingerprints keep a name of the runtime's own
    body = {**FIRST, "metadata": {"idempotency": "upstream-req-9"}}
    made = server.client.post("/v1/runs", json=body)
    assert made.status_code == 202, made.text
    assert made.json()["metadata"]["idempotency"] == "upstream-req-9"
    again = server.client.post("/v1/runs", json=body)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
