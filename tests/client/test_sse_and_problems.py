"""The pure parts of the client: the SSE parser and the problem JSON -> tether error map."""

from __future__ import annotations

import pytest

from tether.client.errors import (
    AuthError,
    NotFoundError,
    ServerBusyError,
    ServerError,
    error_from_problem,
)
from tether.client.event_stream import event_of
from tether.client.sse import SseParser
from tether.core.errors import (
    ApprovalNotFoundError,
    ApprovalSignatureError,
    ApprovalStateError,
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
