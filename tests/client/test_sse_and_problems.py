"""The pure parts of the client: the SSE parser and the problem JSON -> tether error map
(and what an answer that is no problem JSON means)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.client.conftest import LiveServer
from tether.client import AsyncClient, Client
from tether.client.errors import (
    AuthError,
    NotFoundError,
    ServerBusyError,
    ServerError,
    error_from_problem,
)
from tether.client.event_stream import event_of
from tether.client.sse import SseParser
from tether.core.backoff import Backoff
from tether.core.errors import (
    ApprovalNotFoundError,
    ApprovalSignatureError,
    ApprovalStateError,
    ConfigurationError,
    IdempotencyConflictError,
    InvalidInputError,
    RunNotFoundError,
    RunStateError,
    StepNotFoundError,
)

BASE = "https://tether.dev/problems/"


def _feed(text: str) -> list[tuple[str, str, str | None]]:
    p = SseParser()
    out = []
    for line in text.split("\n"):
        msg = p.feed(line)
        if msg is not None:
            out.append((msg.event, msg.data, msg.id))
    return out


def test_sse_messages_comments_and_ids() -> None:
    text = (
        ": ping\n\n"
        'id: 1\nevent: lifecycle\ndata: {"a": 1}\n\n'
        "data: line one\ndata: line two\n\n"  # no id: the last one carries on
        "id: 3\nevent: end\ndata:\n\n"
        "retry: 1000\n\n"
    )
    assert _feed(text) == [
        ("lifecycle", '{"a": 1}', "1"),
        ("message", "line one\nline two", "1"),
        ("end", "", "3"),
    ]


def test_sse_data_to_event() -> None:
    p = SseParser()
    for line in ["id: 7", "event: node_finished", 'data: {"seq": 7, "kind": "node_finished",'
                 ' "data": {"node": "a"}, "created_at": 1.5}']:  # fmt: skip
        assert p.feed(line) is None
    msg = p.feed("")
    assert msg is not None
    ev = event_of(msg)
    assert (ev.seq, ev.kind, ev.data, ev.created_at) == (7, "node_finished", {"node": "a"}, 1.5)
    p.feed("id: 8")
    p.feed("event: note")
    p.feed("data: not json")
    bare = event_of(p.feed(""))  # type: ignore[arg-type]
    assert (bare.seq, bare.kind, bare.data) == (8, "note", {"text": "not json"})


@pytest.mark.parametrize(
    ("status", "kind", "path", "expected"),
    [
        (404, "run-not-found", "/v1/runs/r-1", RunNotFoundError),
        (404, "step-not-found", "/v1/runs/r-1/state", StepNotFoundError),
        (404, "approval-not-found", "/v1/approvals/a-1/approve", ApprovalNotFoundError),
        (404, "not-found", "/v1/runs/r-1/nothing", NotFoundError),
        (404, "not-found", "/v1/workflows/x", NotFoundError),
        (422, "validation", "/v1/runs", InvalidInputError),
        (413, "content-too-large", "/v1/runs", InvalidInputError),
        (409, "idempotency-conflict", "/v1/runs", IdempotencyConflictError),
        (409, "approval-state", "/v1/approvals/a-1/approve", ApprovalStateError),
        (409, "run-state", "/v1/runs/r-1/resume", RunStateError),
        (403, "approval-signature", "/v1/approvals/a-1/approve", ApprovalSignatureError),
        (401, "unauthorized", "/v1/runs", AuthError),
        (403, "forbidden", "/v1/runs", AuthError),
        (429, "queue-full", "/v1/runs", ServerBusyError),
        (500, "internal", "/v1/runs", ServerError),
        (503, "service-unavailable", "/readyz", ServerError),
    ],
)
def test_problem_to_error(status: int, kind: str, path: str, expected: type) -> None:
    problem = {"type": BASE + kind, "title": "t", "status": status, "detail": "what went wrong"}
    err = error_from_problem(status, problem, method="GET", path=path, retry_after=2.0)
    assert type(err) is expected
    if expected is RunNotFoundError:
        assert err.run_id == "r-1"  # type: ignore[attr-defined]
    if expected is ServerBusyError:
        assert err.retry_after == 2.0  # type: ignore[attr-defined]
    if expected in (AuthError, InvalidInputError, ServerError, NotFoundError, RunStateError):
        assert "what went wrong" in str(err)


def test_field_errors_are_listed() -> None:
    problem = {
        "type": BASE + "validation",
        "status": 422,
        "detail": "the request is invalid",
        "errors": [{"loc": "body.input", "msg": "must be an object"}],
    }
    err = error_from_problem(422, problem)
    assert "body.input: must be an object" in str(err)
    assert err.errors == problem["errors"]  # type: ignore[attr-defined]


def _get(status: int, body: bytes, ctype: str, **headers: str) -> BaseException:
    """What ``AsyncClient.get`` raises when every request is answered this way."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": ctype, **headers})

    async def main() -> BaseException:
        transport = httpx.MockTransport(handler)
        retry = Backoff(max_attempts=1, owner="test")
        async with AsyncClient("http://gateway.test", retry=retry, transport=transport) as c:
            try:
                await c.get("01run")
            except Exception as exc:
                return exc
        raise AssertionError("no error")

    return asyncio.run(main())


NGINX_404 = (
    b"<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1>"
    b"</center><hr><center>nginx</center></body></html>"
)


def test_an_answer_that_is_not_a_problem_is_not_read_as_one() -> None:
    """Before: a proxy's HTML 404 (its path to the server wrong) was RunNotFoundError, "no
    such run", for a run that exists; a 502 page put its HTML in the message; and a redirect
    (http:// to https://) answered ServerError 'NoneType where the API has an object'."""
    err = _get(404, NGINX_404, "text/html")
    assert type(err) is NotFoundError
    assert "404 Not Found" in str(err) and "text/html" in str(err) and "<" not in str(err)
    failed = _get(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
    assert isinstance(failed, ServerError) and failed.status == 502
    assert "502 Bad Gateway" in str(failed) and "proxy" in str(failed) and "<" not in str(failed)
    moved = _get(301, b"", "text/html", location="https://gateway.test/v1/runs/01run")
    assert isinstance(moved, ConfigurationError)
    assert "redirected (301) to https://gateway.test" in str(moved)


def _streams(*answers: httpx.Response) -> tuple[AsyncClient, list[str]]:
    """A client whose requests get ``answers`` in turn (the last one from then on); the
    paths it asked are listed."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return answers[min(len(asked), len(answers)) - 1]

    retry = Backoff(max_attempts=3, initial_interval=0.001, max_interval=0.01, owner="test")
    return AsyncClient(
        "http://api.test", retry=retry, transport=httpx.MockTransport(handler)
    ), asked


BUSY = httpx.Response(
    429,
    json={"type": BASE + "rate-limited", "status": 429, "detail": "slow down"},
    headers={"retry-after": "0"},
)
GATEWAY_DOWN = httpx.Response(
    502, text="<h1>502 Bad Gateway</h1>", headers={"content-type": "text/html"}
)


def _sse(text: str) -> httpx.Response:
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


def test_streams_wait_out_a_busy_or_gateway_answer() -> None:
    """Before: following events raised ServerBusyError at a 429 on the stream (a rate-limiting
    proxy) instead of waiting out its Retry-After like any read, and watch_runs() raised
    ServerError at a proxy's 502 instead of riding it out like a dropped connection."""
    events = 'id: 1\nevent: lifecycle\ndata: {"seq": 1, "kind": "lifecycle", "data": {}}\n\n'
    events += 'event: end\ndata: {"run_id": "r1"}\n\n'
    change = 'event: run\ndata: {"run_id": "r1", "status": "EXECUTING", "step": 1}\n\n'

    async def main() -> None:
        c, asked = _streams(BUSY, GATEWAY_DOWN, _sse(events))
        async with c:
            assert [e.seq async for e in c.events("r1")] == [1]
            assert len(asked) == 3
        c, asked = _streams(GATEWAY_DOWN, BUSY, _sse(change))
        async with c:
            async for run in c.watch_runs():
                assert run.run_id == "r1" and len(asked) == 3
                break
        too_long = httpx.Response(429, json={"detail": "busy"}, headers={"retry-after": "3600"})
        c, asked = _streams(too_long)
        async with c:
            with pytest.raises(ServerBusyError) as busy:
                _ = [e async for e in c.events("r1")]
            assert busy.value.retry_after == 3600 and len(asked) == 1

    asyncio.run(main())


def test_event_text_holding_unicode_line_separators_arrives_whole(server: LiveServer) -> None:
    """The client split the SSE body with httpx's aiter_lines, which also ends a line at
    U+2028, U+2029 and NEL: an event whose text held one (JSON carries them unescaped) came
    as a broken ``{"text": '{"seq":4,...'}`` instead of its data. Lines end at CR/LF only."""
    question = "line\u2028separator\u2029paragraph\x85next"
    with Client(server.url) as c:
        run = c.submit("ask", {"question": question})
        for ev in c.events(run.run_id):
            if ev.kind == "escalated":  # the run waits for an answer: its stream goes on
                break
        asked = [e for e in c.events(run.run_id, follow=False) if e.kind == "interrupt"]
    assert ev.data["interrupts"][0]["payload"] == {"question": question}
    assert [e.data["payload"] for e in asked] == [{"question": question}]
