"""``/v1/runs`` over FastAPI's TestClient, on a real SQLite store with an embedded worker."""

from __future__ import annotations

import asyncio

import pytest

from tests.server.conftest import Server, status_in, wait_for
from tether.store.sqlite import SqliteStore
from tether.store.types import Commit, Event


def test_submit_runs_and_get_shows_state_usage_and_phase(server: Server) -> None:
    r = server.client.post("/v1/runs", json={"workflow": "echo", "input": {"text": "hi"}})
    assert r.status_code == 202
    body = r.json()
    assert r.headers["location"] == f"/v1/runs/{body['run_id']}"
    assert body["workflow"] == "echo" and body["input"] == {"text": "hi"}
    assert body["status"] in ("PLANNED", "EXECUTING", "VALIDATING", "COMPLETED")
    run = server.wait(body["run_id"], "COMPLETED")
    assert run["state"] == {"text": "hi", "answer": "HI"}
    assert run["phase"] == "finished" and run["step"] == 1 and run["current_nodes"] == []
    assert run["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cost": 0.0,
        "model_calls": 0,
        "tool_calls": 0,
    }
    assert run["tenant"] is None and run["queue"] == "default"


def test_submit_with_the_same_idempotency_key_gives_one_run(server: Server) -> None:
    body = {"workflow": "echo", "input": {"text": "x"}, "idempotency_key": "order-1"}
    first = server.client.post("/v1/runs", json=body)
    again = server.client.post("/v1/runs", json=body)
    assert first.status_code == again.status_code == 202
    assert first.json()["run_id"] == again.json()["run_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = server.client.post("/v1/runs", json={**body, "input": {"text": "y"}})
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"


def test_a_thread_turn_sent_again_with_its_key_is_one_run(server: Server) -> None:
    """A client retrying a turn after a timeout could not say it was the same turn: a key with
    a thread was a 422, and without one the retry was a second turn of the conversation."""
    body = {"workflow": "echo", "input": {"text": "x"}, "thread_id": "chat-7"}
    first = server.client.post("/v1/runs", json={**body, "idempotency_key": "turn-1"})
    assert first.status_code == 202, first.text
    server.wait(first.json()["run_id"], "COMPLETED")
    again = server.client.post("/v1/runs", json={**body, "idempotency_key": "turn-1"})
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["run_id"] == first.json()["run_id"]
    listed = server.client.get("/v1/runs", params={"thread_id": "chat-7"}).json()["items"]
    assert len(listed) == 1
    changed = {**body, "input": {"text": "y"}, "idempotency_key": "turn-1"}
    assert server.client.post("/v1/runs", json=changed).status_code == 409
    spoof = {**body, "idempotency_key": "turn-2", "metadata": {"thread_request": "turn-1"}}
    assert server.client.post("/v1/runs", json=spoof).status_code == 422  # tether's own key


def test_submit_an_unknown_workflow_is_a_422_naming_the_known_ones(server: Server) -> None:
    r = server.client.post("/v1/runs", json={"workflow": "nope", "input": {}})
    assert r.status_code == 422
    assert "echo" in r.json()["detail"] and r.json()["type"].endswith("/unknown-workflow")


def test_list_filters_and_pages_newest_first(server: Server) -> None:
    ids = [server.submit("echo", {"text": str(i)}) for i in range(5)]
    ask = server.submit("ask", {"question": "q"})
    for run_id in ids:
        server.wait(run_id, "COMPLETED")
    server.wait(ask, "ESCALATED")
    page = server.client.get("/v1/runs", params={"limit": 2}).json()
    assert [r["run_id"] for r in page["items"]] == [ask, ids[4]]
    assert "state" not in page["items"][0]
    assert page["items"][0]["usage"] == {
        "input_tokens": 0, "output_tokens": 0, "cost": 0.0, "model_calls": 0, "tool_calls": 0
    }  # fmt: skip
    seen = [r["run_id"] for r in page["items"]]
    while page["next_cursor"]:
        page = server.client.get(
            "/v1/runs", params={"limit": 2, "cursor": page["next_cursor"]}
        ).json()
        seen += [r["run_id"] for r in page["items"]]
    assert seen == [ask, *reversed(ids)]
    echo = server.client.get("/v1/runs", params={"workflow": "echo", "limit": 500}).json()
    assert len(echo["items"]) == 5 and echo["next_cursor"] is None
    waiting = server.client.get("/v1/runs", params={"status": "escalated,completed"}).json()
    assert len(waiting["items"]) == 6
    only = server.client.get("/v1/runs", params=[("status", "ESCALATED")]).json()
    assert [r["run_id"] for r in only["items"]] == [ask]
    assert server.client.get("/v1/runs", params={"failed_only": "true"}).json()["items"] == []


def test_interrupt_resume_and_history(server: Server) -> None:
    run_id = server.submit("ask", {"question": "meaning"})
    run = server.wait(run_id, "ESCALATED")
    assert run["phase"] == "waiting" and run["current_nodes"] == ["ask_human"]
    items = server.client.get("/v1/interrupts").json()["items"]
    assert [i["run_id"] for i in items] == [run_id]
    assert items[0]["interrupt"]["payload"] == {"question": "meaning"}
    r = server.client.post(f"/v1/runs/{run_id}/resume", json={"value": 42})
    assert r.status_code == 202, r.text
    done = server.wait(run_id, "COMPLETED")
    assert done["state"]["answer"] == "the human said 42"
    assert server.client.get("/v1/interrupts").json()["items"] == []
    again = server.client.post(f"/v1/runs/{run_id}/resume", json={"value": 1})
    assert again.status_code == 409 and "COMPLETED" in again.json()["detail"]
    hist = server.client.get(f"/v1/runs/{run_id}/history").json()
    steps = [s["step"] for s in hist["items"]]
    assert steps[0] == 0 and steps == sorted(steps)
    last = hist["items"][-1]
    assert last["nodes"] == ["ask_human"]
    assert last["writes"][0]["writes"] == {"answer": "the human said 42"}


def test_an_interrupt_id_without_a_value_answers_nothing(server: Server) -> None:
    """Before, ``{"interrupt_id": ...}`` alone was a 202 that recorded None as the person's
    answer (``Runtime.resume`` refuses exactly that in-process)."""
    run_id = server.submit("ask", {"question": "meaning"})
    server.wait(run_id, "ESCALATED")
    (pending,) = server.client.get("/v1/interrupts").json()["items"]
    iid = pending["interrupt"]["id"]
    r = server.client.post(f"/v1/runs/{run_id}/resume", json={"interrupt_id": iid})
    assert r.status_code == 422, r.text
    assert "with a value" in r.json()["detail"]
    assert server.client.get(f"/v1/runs/{run_id}").json()["status"] == "ESCALATED"
    r = server.client.post(f"/v1/runs/{run_id}/resume", json={"interrupt_id": iid, "value": 7})
    assert r.status_code == 202, r.text
    assert server.wait(run_id, "COMPLETED")["state"]["answer"] == "the human said 7"


def test_history_pages_and_state_at_each_step_and_fork(server: Server) -> None:
    run_id = server.submit("count", {"n": 5})
    run = server.wait(run_id, "COMPLETED")
    assert run["state"]["i"] == 5 and run["step"] == 5
    page = server.client.get(f"/v1/runs/{run_id}/history", params={"limit": 2}).json()
    steps = [s["step"] for s in page["items"]]
    while page["next_cursor"]:
        page = server.client.get(
            f"/v1/runs/{run_id}/history", params={"limit": 2, "cursor": page["next_cursor"]}
        ).json()
        steps += [s["step"] for s in page["items"]]
    assert steps == [0, 1, 2, 3, 4, 5]
    for step in range(6):
        got = server.client.get(f"/v1/runs/{run_id}/state", params={"step": step}).json()
        want = {"n": 5, "i": step} if step else {"n": 5}
        assert got == {"run_id": run_id, "step": step, "state": want}
    assert server.client.get(f"/v1/runs/{run_id}/state").json()["step"] == 5
    beyond = server.client.get(f"/v1/runs/{run_id}/state", params={"step": 9})
    assert beyond.status_code == 404
    fork = server.client.post(f"/v1/runs/{run_id}/fork", json={"step": 2, "patch": {"n": 7}})
    assert fork.status_code == 202, fork.text
    child = fork.json()
    assert child["parent_run_id"] == run_id and fork.headers["location"].endswith(child["run_id"])
    done = server.wait(child["run_id"], "COMPLETED")
    assert done["state"] == {"n": 7, "i": 7}
    kids = server.client.get("/v1/runs", params={"parent_run_id": run_id}).json()["items"]
    assert [k["run_id"] for k in kids] == [child["run_id"]]
    bad = server.client.post(f"/v1/runs/{run_id}/fork", json={"step": 99})
    assert bad.status_code == 404
    bad_patch = server.client.post(f"/v1/runs/{run_id}/fork", json={"step": 1, "patch": {"x": 1}})
    assert bad_patch.status_code == 422


def test_cancel_a_run_that_waits_and_refuse_a_finished_one(server: Server) -> None:
    run_id = server.submit("ask", {"question": "q"})
    server.wait(run_id, "ESCALATED")
    r = server.client.post(f"/v1/runs/{run_id}/cancel", json={"reason": "not needed"})
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    again = server.client.post(f"/v1/runs/{run_id}/cancel")
    assert again.status_code == 409


def test_cancel_a_running_run(server: Server) -> None:
    run_id = server.submit("count", {"n": 10_000, "pause": 0.01})
    wait_for(server.client, run_id, lambda run: run["step"] >= 2)
    r = server.client.post(f"/v1/runs/{run_id}/cancel", json={})
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    run = server.wait(run_id, "CANCELLED")
    assert run["phase"] == "finished"


def test_unknown_run_is_a_404_problem_everywhere(server: Server) -> None:
    for method, path in (
        ("GET", "/v1/runs/nope"),
        ("GET", "/v1/runs/nope/events"),
        ("GET", "/v1/runs/nope/events/stream"),
        ("GET", "/v1/runs/nope/history"),
        ("GET", "/v1/runs/nope/state"),
        ("POST", "/v1/runs/nope/cancel"),
        ("POST", "/v1/runs/nope/resume"),
    ):
        r = server.client.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 404 and "nope" in r.json()["detail"]
    r = server.client.post("/v1/runs/nope/fork", json={"step": 0})
    assert r.status_code == 404


def test_workflows_list_their_graphs(server: Server) -> None:
    items = {w["name"]: w for w in server.client.get("/v1/workflows").json()["items"]}
    assert set(items) == {"echo", "ask", "count", "refunds"}
    g = items["count"]["graph"]
    assert g["entry"] == ["tick"] and g["phases"] == {"tick": "agent"}
    edges = {(e["source"], e["target"], e["conditional"]) for e in g["edges"]}
    assert edges == {
        ("__start__", "tick", False),
        ("tick", "tick", True),
        ("tick", "__end__", True),
    }
    assert {n["id"] for n in g["nodes"]} == {"__start__", "tick", "__end__"}
    assert server.client.get("/v1/workflows/echo").json()["version"] == items["echo"]["version"]
    assert server.client.get("/v1/workflows/nope").status_code == 404


def test_probes(server: Server) -> None:
    assert server.client.get("/healthz").json()["status"] == "ok"
    assert server.client.get("/readyz").json()["status"] == "ready"
    spec = server.client.get("/openapi.json").json()
    assert "/v1/runs/{run_id}/events/stream" in spec["paths"]
    assert server.client.get("/docs").status_code == 200


def test_status_literal_matches_the_lifecycle() -> None:
    from typing import get_args

    from tether.core.lifecycle import RunStatus
    from tether.server.schemas import Status

    assert set(get_args(Status)) == {s.value for s in RunStatus}


def test_events_page_by_seq(server: Server) -> None:
    run_id = server.submit("count", {"n": 3})
    server.wait(run_id, "COMPLETED")
    everything = server.client.get(f"/v1/runs/{run_id}/events", params={"limit": 500}).json()
    seqs = [e["seq"] for e in everything["items"]]
    assert seqs == list(range(1, len(seqs) + 1)) and everything["next_cursor"] is None
    paged, cursor = [], None
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = server.client.get(f"/v1/runs/{run_id}/events", params=params).json()
        paged += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == seqs
    after = server.client.get(f"/v1/runs/{run_id}/events", params={"after": 4}).json()
    assert [e["seq"] for e in after["items"]] == seqs[4:]
    kinds = {e["kind"] for e in everything["items"]}
    assert {"lifecycle", "step_finished"} <= kinds
    run = server.client.get(f"/v1/runs/{run_id}").json()
    assert status_in("COMPLETED")(run)
    assert run["event_seq"] == seqs[-1]  # the dashboard sizes its event list with it
    listed = server.client.get("/v1/runs", params={"limit": 1}).json()["items"][0]
    assert listed["run_id"] == run_id and listed["event_seq"] == seqs[-1]


def test_metadata_round_trips_and_the_runtime_s_own_keys_are_refused(server: Server) -> None:
    ok = server.client.post(
        "/v1/runs", json={"workflow": "echo", "input": {}, "metadata": {"team": "ops"}}
    )
    assert ok.status_code == 202 and ok.json()["metadata"]["team"] == "ops"
    for key in ("step_limit", "workflow_ref", "__x", "tether_tenant"):
        r = server.client.post(
            "/v1/runs", json={"workflow": "echo", "input": {}, "metadata": {key: 1}}
        )
        assert r.status_code == 422 and "runtime's own" in r.json()["detail"], key


def test_list_items_carry_their_usage(server: Server) -> None:
    ids = [server.submit("echo", {"text": str(i)}) for i in range(3)]
    for run_id in ids:
        server.wait(run_id, "COMPLETED")

    async def record() -> None:  # model and tool calls, as the runs' own writes record them
        store = SqliteStore(server.db)
        await store.setup()
        try:
            for n, run_id in enumerate(ids[:2], start=1):
                calls = [
                    Event(run_id, 0, "model_call", 0.0, None, None,
                          {"model": "m", "input_tokens": 100 * n, "output_tokens": n,
                           "cost": 0.5 * n})
                    for _ in range(n)
                ]  # fmt: skip
                await store.commit(run_id, None, Commit(events=calls))
            await store.record_intent(ids[0], "tool-1", "tool", {"q": 1})
        finally:
            await store.close()

    asyncio.run(record())
    items = {r["run_id"]: r for r in server.client.get("/v1/runs").json()["items"]}
    assert items[ids[0]]["usage"] == {
        "input_tokens": 100, "output_tokens": 1, "cost": 0.5, "model_calls": 1, "tool_calls": 1
    }  # fmt: skip
    assert items[ids[1]]["usage"] == {
        "input_tokens": 400, "output_tokens": 4, "cost": 2.0, "model_calls": 2, "tool_calls": 0
    }  # fmt: skip
    assert items[ids[2]]["usage"]["model_calls"] == 0
    for run_id in ids:  # the list says what each run's own page says
        assert items[run_id]["usage"] == server.client.get(f"/v1/runs/{run_id}").json()["usage"]


@pytest.mark.parametrize(
    ("raw", "where", "what"),
    [
        (b'{"workflow": "echo", "input": {"text": "\\ud800"}}', "['input']['text']", "UTF-8"),
        (b'{"workflow": "echo", "input": {"text": "x"}, "metadata": {"k": "\\udcff"}}', "['metadata']['k']", "UTF-8"),
        (b'{"workflow": "echo", "input": {"text": "x"}, "idempotency_key": "\\ud800"}', "['idempotency_key']", "UTF-8"),
        (b'{"workflow": "echo", "input": {"text": NaN}}', "['input']['text']", "NaN"),
        (b'{"workflow": "echo", "input": {"text": "x", "n": 123456789012345678901234567890}}', "['input']['n']", "64 bits"),
        (b'{"workflow": "echo", "input": {"text": "x", "n": ' + b"[" * 300 + b"]" * 300 + b"}}", "", "nested deeper than 200 levels"),
    ],
)  # fmt: skip
def test_a_body_tether_cannot_store_is_a_422_naming_where(
    server: Server, raw: bytes, where: str, what: str
) -> None:
    """JSON text may spell a lone surrogate, NaN or a 30-digit integer; each was a 500 (the
    write failed) before it was refused here."""
    r = server.client.post("/v1/runs", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert f"body{where}" in r.json()["detail"] and what in r.json()["detail"]
    assert server.client.get("/v1/runs").json()["items"] == []
    resumed = server.client.post(
        "/v1/runs/01abc/resume", content=b'{"value": "\\ud800"}',
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert resumed.status_code == 422 and "body['value']" in resumed.json()["detail"]


def test_a_body_nested_deeper_than_the_parser_goes_is_a_400(server: Server) -> None:
    raw = b'{"workflow": "echo", "input": {"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    r = server.client.post("/v1/runs", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert server.client.get("/v1/runs").json()["items"] == []
