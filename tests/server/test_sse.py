"""Server-Sent Events over real uvicorn: a client that disconnects mid-run and reconnects with
Last-Event-ID misses no event and sees none twice; heartbeats; the end event; run changes
(items as the runs list shows them, usage included)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest

from tests.server import apps
from tests.server.sse_client import Frame, frames
from tests.server.uvicorn_thread import served
from tether import END, START, Graph, RunContext, interrupt
from tether.llm.fakes import ScriptedModel
from tether.server.app import create_app
from tether.server.settings import ServerSettings

DEADLINE = 60.0
SPENT = {"model": "fake-1", "input_tokens": 1200, "output_tokens": 34, "cost": 0.25}


class Spend(TypedDict, total=False):
    go: str


def spend_tokens(state: Spend, ctx: RunContext) -> dict[str, Any]:
    go = interrupt({"question": "spend tokens?"})
    ctx.emit("model_call", dict(SPENT))  # what a model wrapper records for one call
    return {"go": str(go)}


spend_graph = Graph(Spend, name="spend")
spend_graph.add_node("spend_tokens", spend_tokens)
spend_graph.add_edge(START, "spend_tokens").add_edge("spend_tokens", END)
spend = spend_graph.compile()

REPLY = "Paris is the capital of France."


class Talk(TypedDict, total=False):
    answer: str


async def talk(state: Talk, ctx: RunContext) -> dict[str, Any]:
    interrupt({"question": "talk now?"})  # parks the run: the test's stream is open before
    model = ScriptedModel([REPLY], stream_chunk=4)
    reply = await model.chat("What is the capital of France?", stream=True)
    return {"answer": reply.text}


talk_graph = Graph(Talk, name="talk")
talk_graph.add_node("talk", talk).add_edge(START, "talk").add_edge("talk", END)
talk_wf = talk_graph.compile()


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    settings = ServerSettings(
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        workflows=[*apps.workflows, spend, talk_wf],
        embedded_workers=8,
        sse_heartbeat=0.3,
        runs_poll=0.05,
    )
    with served(create_app(settings)) as url:
        yield url


def submit(client: httpx.Client, workflow: str, input: dict[str, object]) -> str:
    r = client.post("/v1/runs", json={"workflow": workflow, "input": input})
    assert r.status_code == 202, r.text
    return str(r.json()["run_id"])


def read_until(resp: httpx.Response, stop: int | str) -> list[Frame]:
    """Frames until ``stop`` events with an id were read, or an event named ``stop``."""
    got: list[Frame] = []
    for f in frames(resp):
        got.append(f)
        ided = [x for x in got if x.id is not None]
        if (isinstance(stop, int) and len(ided) >= stop) or f.event == stop:
            break
    return got


def test_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(base: str) -> None:
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        run_id = submit(c, "count", {"n": 40, "pause": 0.02})
        url = f"/v1/runs/{run_id}/events/stream"
        seen: list[int] = []
        last: int | None = None
        ended = False
        for _ in range(200):  # reconnect again and again: after 3 events each time
            headers = {} if last is None else {"Last-Event-ID": str(last)}
            with c.stream("GET", url, headers=headers) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                got = read_until(resp, 3)
            ids = [f.id for f in got if f.id is not None]
            for f in got:
                if f.id is not None:
                    assert f.data["seq"] == f.id and f.event == f.data["kind"]
            seen += ids
            last = seen[-1] if seen else last
            if any(f.event == "end" for f in got):
                ended = True
                break
        assert ended, "the stream never ended"
        assert len(seen) == len(set(seen)), "an event came twice"
        stored = c.get(f"/v1/runs/{run_id}/events", params={"limit": 500}).json()["items"]
        assert seen == [e["seq"] for e in stored], "an event was missed"
        assert c.get(f"/v1/runs/{run_id}").json()["status"] == "COMPLETED"


def test_a_finished_run_streams_its_log_then_end_and_after_skips(base: str) -> None:
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        run_id = submit(c, "echo", {"text": "x"})
        deadline = time.monotonic() + DEADLINE
        while c.get(f"/v1/runs/{run_id}").json()["status"] != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with c.stream("GET", f"/v1/runs/{run_id}/events/stream") as resp:
            got = [f for f in frames(resp) if not f.comment]
        assert got[-1].event == "end" and got[-1].data == {"run_id": run_id, "status": "COMPLETED"}
        ids = [f.id for f in got[:-1]]
        assert ids == list(range(1, len(ids) + 1))
        with c.stream("GET", f"/v1/runs/{run_id}/events/stream", params={"after": 3}) as resp:
            later = [f.id for f in frames(resp) if f.id is not None]
        assert later == ids[3:]


def test_a_waiting_run_keeps_its_stream_open_with_heartbeats_until_it_ends(base: str) -> None:
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        run_id = submit(c, "ask", {"question": "q"})
        with c.stream("GET", f"/v1/runs/{run_id}/events/stream") as resp:
            it = frames(resp)
            pings = 0
            kinds: list[str] = []
            for f in it:
                if f.comment and f.data is None:
                    pings += 1
                else:
                    kinds.append(f.event)
                if pings >= 3 and "interrupt" in kinds:
                    break
            r = c.post(f"/v1/runs/{run_id}/resume", json={"value": "yes"})
            assert r.status_code == 202
            rest = [f.event for f in it if not f.comment]
        assert rest[-1] == "end"
        assert pings >= 3


def test_a_streamed_model_answer_reaches_the_stream_token_by_token(base: str) -> None:
    """A node that streams a model's answer: the run's SSE stream carries each piece as a
    ``model_token`` event while it streams (live only: no id, not in the stored log), then
    the ``model_call`` event with the whole answer."""
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        run_id = submit(c, "talk", {})
        with c.stream("GET", f"/v1/runs/{run_id}/events/stream") as resp:
            it = frames(resp)
            for f in it:
                if f.event == "interrupt":
                    break
            assert c.post(f"/v1/runs/{run_id}/resume", json={"value": "go"}).status_code == 202
            rest = [f for f in it if not f.comment]
        tokens = [f for f in rest if f.event == "model_token"]
        assert "".join(f.data["data"]["delta"] for f in tokens) == REPLY
        assert len(tokens) == -(-len(REPLY) // 4)  # one per streamed piece
        kinds = [f.event for f in rest]
        call = rest[kinds.index("model_call")].data["data"]
        assert all(f.id is None and f.data["data"]["model"] == call["model"] for f in tokens)
        assert kinds.index("model_call") > kinds.index("model_token") and kinds[-1] == "end"
        stored = c.get(f"/v1/runs/{run_id}/events").json()
        assert "model_token" not in {e["kind"] for e in stored["items"]}


def test_run_change_stream_shows_new_runs_and_their_changes(base: str) -> None:
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        with c.stream("GET", "/v1/stream/runs") as resp:
            it = frames(resp)
            next(it)  # the opening comment: the stream is up
            run_id = submit(c, "echo", {"text": "x"})
            statuses = []
            for f in it:
                if f.event == "run" and f.data["run_id"] == run_id:
                    statuses.append(f.data["status"])
                    assert set(f.data) >= {"run_id", "status", "workflow", "step", "updated_at"}
                    if f.data["status"] == "COMPLETED":
                        break
        assert statuses[-1] == "COMPLETED"


def test_run_change_items_are_the_list_items_usage_included(base: str) -> None:
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        with c.stream("GET", "/v1/stream/runs") as resp:
            it = frames(resp)
            next(it)  # the opening comment: the stream is up
            run_id = submit(c, "spend", {})
            done: dict[str, Any] | None = None
            answered = False
            for f in it:
                if f.event != "run" or f.data["run_id"] != run_id:
                    continue
                if f.data["status"] == "ESCALATED" and not answered:
                    answered = True
                    assert f.data["usage"]["model_calls"] == 0
                    r = c.post(f"/v1/runs/{run_id}/resume", json={"value": "go"})
                    assert r.status_code == 202, r.text
                if f.data["status"] == "COMPLETED":
                    done = f.data
                    break
        assert done is not None
        assert done["usage"] == {
            "input_tokens": 1200, "output_tokens": 34, "cost": 0.25, "model_calls": 1,
            "tool_calls": 0,
        }  # fmt: skip
        listed = {r["run_id"]: r for r in c.get("/v1/runs").json()["items"]}
        assert done == listed[run_id]  # what a reload of the list would show


def test_frames_are_json_for_any_event_data() -> None:
    from tether.server.sse import frame

    data = {"big": 2**70, "text": "café\nline two", "n": 1.5}
    text = frame(data, event="custom", id=7)
    head, _, body = text.partition("data: ")
    assert head == "id: 7\nevent: custom\n" and body.endswith("\n\n")
    assert "\n" not in body.rstrip("\n")  # one data line: newlines inside are escaped
    assert json.loads(body) == data  # a 70-bit integer too (orjson refuses it)


def test_a_last_event_id_past_the_runs_last_event_is_refused_not_waited_past(base: str) -> None:
    """A Last-Event-ID (or ``after``) beyond the run's last event cannot be one this stream
    sent (another run's, a typo): streaming from there skipped every event until the run's
    log reached it, and the stream then ended with no event at all. It is a 422 naming the
    run's last event; the last event itself is a valid place to resume from."""
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        run_id = submit(c, "ask", {"question": "q"})
        deadline = time.monotonic() + DEADLINE
        while (run := c.get(f"/v1/runs/{run_id}").json())["status"] != "ESCALATED":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        head = run["event_seq"]
        url = f"/v1/runs/{run_id}/events/stream"
        for headers, params in (
            ({"Last-Event-ID": str(head + 1)}, {}),
            ({"Last-Event-ID": "999999"}, {}),
            ({}, {"after": head + 50}),
        ):
            with c.stream("GET", url, headers=headers, params=params) as resp:
                assert resp.status_code == 422, (headers, params)
                resp.read()
            problem = resp.json()
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert f"1..{head}" in problem["detail"], problem
        with c.stream("GET", url, headers={"Last-Event-ID": str(head)}) as resp:
            assert resp.status_code == 200
            it = frames(resp)
            next(it)  # the opening comment: the stream is up, after the last event
            assert c.post(f"/v1/runs/{run_id}/resume", json={"value": "y"}).status_code == 202
            later = [f for f in it if not f.comment]
        assert later[0].id == head + 1 and later[-1].event == "end"
