"""The server's problem JSON as the tether errors a Runtime raises; auth and tenants."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from tests.client.conftest import LiveServer
from tether import RunStatus
from tether.client import AsyncClient, AuthError, Client, NotFoundError
from tether.core.errors import (
    ApprovalNotFoundError,
    IdempotencyConflictError,
    InvalidInputError,
    RunNotFoundError,
    RunStateError,
    StepNotFoundError,
)


def test_not_found(server: LiveServer) -> None:
    with Client(server.url) as c:
        with pytest.raises(RunNotFoundError) as err:
            c.get("run-that-is-not")
        assert err.value.run_id == "run-that-is-not"
        with pytest.raises(RunNotFoundError):
            c.cancel("nope")
        with pytest.raises(RunNotFoundError):
            list(c.events("nope"))
        with pytest.raises(ApprovalNotFoundError):
            c.approve("ap-nope", "alice", signature="x")

    async def unknown_route() -> None:
        async with AsyncClient(server.url) as c:
            await c.http.call("GET", "/v1/nothing-here")

    with pytest.raises(NotFoundError):
        asyncio.run(unknown_route())


def test_step_not_found(server: LiveServer) -> None:
    """The error names the step asked for and the steps the run has (it said "no checkpoint
    at step -1": the problem did not carry the step), as does the problem JSON."""
    with Client(server.url) as c:
        run = c.wait(c.submit("echo", {"text": "a"}).run_id, timeout=120)
        for ask in (lambda: c.state(run.run_id, 99), lambda: c.fork(run.run_id, 99)):
            with pytest.raises(StepNotFoundError) as err:
                ask()
            assert err.value.run_id == run.run_id and err.value.step == 99
            assert "step 99" in str(err.value) and "-1" not in str(err.value)
            assert f"0..{run.step}" in str(err.value)  # the steps it has, as the server said
    raw = httpx.get(f"{server.url}/v1/runs/{run.run_id}/state", params={"step": 99})
    assert raw.status_code == 404 and raw.json()["step"] == 99


def test_invalid_input(server: LiveServer) -> None:
    with Client(server.url) as c:
        with pytest.raises(InvalidInputError, match="unknown workflow"):
            c.submit("no-such-workflow", {})
        with pytest.raises(InvalidInputError):
            c.submit("echo", {"text": 5})  # the state field is a str
        with pytest.raises(InvalidInputError, match="step"):
            c.fork("any", -1)  # checked before sending
        with pytest.raises(InvalidInputError, match="run_id"):
            c.get("")
        with pytest.raises(InvalidInputError, match="limit"):
            list(c.list_runs(limit=0))


def test_a_field_error_is_said_once(server: LiveServer) -> None:
    """The server's detail lists the field errors already: the client's message said each of
    them twice ("query.status: ...; query.status: ...")."""
    with Client(server.url) as c:
        with pytest.raises(InvalidInputError) as err:
            c.approvals("expired")
        assert str(err.value).count("query.status") == 1, str(err.value)
        assert err.value.errors  # type: ignore[attr-defined]
        with pytest.raises(InvalidInputError) as err:
            c.list_page(limit=10_000)
        assert str(err.value).count("query.limit") == 1, str(err.value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "NaN or infinity"),
        ({1, 2}, "set"),
        (Decimal("1.5"), "Decimal"),
        (b"\xff", "bytes"),
    ],
)
def test_a_body_json_cannot_carry_is_invalid_input_named_where(
    server: LiveServer, value: object, says: str
) -> None:
    """What the client cannot send as JSON is the ``InvalidInputError`` a Runtime raises for
    it, naming where it sits (httpx's ``ValueError``/``TypeError`` came out before), and
    nothing reaches the server."""
    with Client(server.url) as c:
        for call in (
            lambda: c.submit("echo", {"text": value}),
            lambda: c.submit("echo", {"text": "x"}, metadata={"note": [1, value]}),
            lambda: c.resume("some-run", {"answer": value}),
        ):
            with pytest.raises(InvalidInputError, match=says) as err:
                call()
            said = str(err.value)
            assert "['text']" in said or "['note'][1]" in said or "['answer']" in said
        assert c.list_page().items == []  # none of them was submitted


def test_near_miss_list_filters_are_invalid_input(server: LiveServer) -> None:
    """``workflow=5`` went out as ``?workflow=5`` and matched nothing, ``status=""`` listed
    every run, ``thread=`` was a TypeError: each is an InvalidInputError saying what was wrong
    (checked before sending, or the server's 422)."""
    with Client(server.url) as c:
        c.wait(c.submit("echo", {"text": "a"}).run_id, timeout=120)
        for filters, said in [
            ({"workflow": 5}, "workflow must be a non-empty string"),
            ({"thread_id": 7}, "thread_id must be a non-empty string"),
            ({"parent_run_id": ""}, "parent_run_id must be a non-empty string"),
            ({"status": ""}, "names no status"),
            ({"status": []}, "names no status"),
            ({"status": 3}, "status must be a run status"),
            ({"status": "bogus"}, "unknown status 'BOGUS'"),
            ({"failed_only": "yes"}, "failed_only must be True or False"),
            ({"thread": "t1"}, "list_runs takes no filter 'thread'; it takes: "),
            ({"limit": -1}, "limit must be an int >= 1"),
        ]:
            with pytest.raises(InvalidInputError, match=said):
                list(c.list_runs(**filters))
        with pytest.raises(InvalidInputError, match="limit must be an int >= 1"):
            c.list_page(limit="5")
        assert [r.workflow for r in c.list_runs(workflow="echo", status="COMPLETED")] == ["echo"]


def test_conflicts(server: LiveServer) -> None:
    with Client(server.url) as c:
        run = c.wait(c.submit("echo", {"text": "a"}, idempotency_key="same").run_id, timeout=120)
        with pytest.raises(IdempotencyConflictError):
            c.submit("echo", {"text": "other"}, idempotency_key="same")
        again = c.submit("echo", {"text": "a"}, idempotency_key="same")  # the same request
        assert again.run_id == run.run_id
        with pytest.raises(IdempotencyConflictError, match="another metadata, priority") as err:
            c.submit("echo", {"text": "a"}, idempotency_key="same", priority=3, metadata={"x": 1})
        assert err.value.fields == ["metadata", "priority"]  # type: ignore[attr-defined]
        assert run.status is RunStatus.COMPLETED
        with pytest.raises(RunStateError):
            c.resume(run.run_id, "late")
        with pytest.raises(RunStateError):
            c.cancel(run.run_id)


def test_keys_scopes_and_tenants(keyed_server: LiveServer) -> None:
    url, keys = keyed_server.url, keyed_server.keys
    with Client(url) as anonymous:
        with pytest.raises(AuthError) as err:
            anonymous.list_page()
        assert err.value.status == 401 and "api_key" in str(err.value)
    with Client(url, api_key="tk_wrong") as wrong:
        with pytest.raises(AuthError) as err:
            wrong.workflows()
        assert err.value.status == 401
    with Client(url, api_key=keys["a"]) as a, Client(url, api_key=keys["a_read"]) as reader:
        run = a.wait(a.submit("echo", {"text": "mine"}).run_id, timeout=120)
        assert reader.get(run.run_id).status is RunStatus.COMPLETED
        with pytest.raises(AuthError) as err:
            reader.submit("echo", {"text": "no"})
        assert err.value.status == 403 and "scope" in str(err.value)
    with Client(url, api_key=keys["b"]) as b:
        with pytest.raises(RunNotFoundError):
            b.get(run.run_id)  # another tenant's run does not exist for b
        with pytest.raises(RunNotFoundError):
            list(b.events(run.run_id, follow=False))
        assert [r.run_id for r in b.list_runs()] == []


def test_odd_run_ids_are_the_run_asked_for(server: LiveServer) -> None:
    """Before: ``get('.')`` asked ``/v1/runs/.``, which the URL rules make ``/v1/runs``, and
    answered the runs list as a Run with no id; ``cancel('..')`` posted to ``/v1/cancel``;
    the event stream put the id in its path unescaped (``a?b`` became a query); and a
    missing ``x:y`` was reported as run ``'x%3Ay'``. Now each id is the one segment it says."""
    with Client(server.url, timeout=30) as c:
        c.wait(c.submit("echo", {"text": "a"}).run_id, timeout=120)  # the list is not empty
        for rid in (".", "..", "x:y", "a@b"):
            with pytest.raises(RunNotFoundError) as err:
                c.get(rid)
            assert err.value.run_id == rid and repr(rid) in str(err.value)
            with pytest.raises(RunNotFoundError):
                c.cancel(rid)
            with pytest.raises(RunNotFoundError):
                list(c.events(rid))
            with pytest.raises(RunNotFoundError):
                c.wait(rid, timeout=60)
        for rid in ("a?b", "a#b"):
            with pytest.raises(InvalidInputError, match="run_id"):
                list(c.events(rid))  # the same refusal as get's, not a query or a fragment
        for rid in ("a/b", "../runs"):
            with pytest.raises(InvalidInputError, match="'/'"):
                c.get(rid)


def test_transitions_name_their_actor_to_those_who_may_read_the_run(
    keyed_server: LiveServer,
) -> None:
    """The lifecycle with who made each change (``tether runs history --server`` showed a
    blank ACTOR, read from lifecycle events that carry none), for keys that may read the run;
    a tenant's idempotency key as it sent it, not as the server stores it."""
    from tether.client import Transition

    url, keys = keyed_server.url, keyed_server.keys
    with Client(url, api_key=keys["a"]) as a, Client(url, api_key=keys["a_read"]) as reader:
        sent = a.submit("echo", {"text": "mine"}, idempotency_key="mine")
        run = a.wait(sent.run_id, timeout=120)
        assert sent.raw["idempotency_key"] == "mine"
        assert a.get(run.run_id).raw["idempotency_key"] == "mine"
        moves = list(reader.transitions(run.run_id))
        assert all(isinstance(m, Transition) for m in moves)
        assert [m.seq for m in moves] == list(range(1, len(moves) + 1))
        assert moves[0].src is None and moves[0].dst is RunStatus.RECEIVED
        assert moves[-1].dst is RunStatus.COMPLETED
        assert moves[0].actor.startswith("api:") and moves[0].actor != "api:local"
        assert any(m.actor.startswith("worker:") for m in moves)
        first = reader.transitions_page(run.run_id, limit=2)
        assert [m.seq for m in first.items] == [1, 2] and first.next_cursor
        rest = reader.transitions_page(run.run_id, cursor=first.next_cursor)
        assert [m.seq for m in rest.items] == [m.seq for m in moves[2:]]
    with Client(url, api_key=keys["b"]) as b, pytest.raises(RunNotFoundError):
        list(b.transitions(run.run_id))  # another tenant's run does not exist for b
