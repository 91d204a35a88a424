"""An idempotency key sent again: the very same request returns the first run; the key with
any parameter asked otherwise (metadata, queue, priority, budget, max_attempts, max_steps,
delay) is an IdempotencyConflictError naming what differs (it returned the first run, as if
it were what was asked). On every backend, threads and a full queue included."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, Runtime
from tether.core import serde
from tether.core.errors import IdempotencyConflictError, QueueFullError
from tether.core.lifecycle import RunStatus
from tether.governance import Budget, Governance
from tether.graph.submission import IDEMPOTENCY_KEY, check_same_request, fingerprints
from tether.store.queue_limits import QueueControl
from tether.store.types import RunRecord


class S(TypedDict, total=False):
    n: int


g = Graph(S, name="sub")
g.add_node("a", lambda s: {"n": s.get("n", 0) + 1}).add_edge(START, "a").add_edge("a", END)
WF = g.compile(governance=Governance(budget=Budget(cost=10.0)))

FIRST: dict[str, Any] = {
    "metadata": {"owner": "ops"},
    "queue": "default",
    "priority": 3,
    "budget": {"cost": 2.0},
    "max_attempts": 2,
    "max_steps": 50,
}


def conflict(err: pytest.ExceptionInfo[IdempotencyConflictError]) -> list[str]:
    fields: list[str] = err.value.fields  # type: ignore[attr-defined]
    return fields


async def test_the_same_request_returns_the_run_and_another_is_refused(any_rt: Runtime) -> None:
    rt = any_rt
    first = await rt.submit(WF, {"n": 1}, idempotency_key="order-1", **FIRST)
    again = await rt.submit(WF, {"n": 1}, idempotency_key="order-1", **FIRST)
    assert (again.run_id, again.created) == (first.run_id, False)
    for change, named in (
        ({"metadata": {"owner": "dev"}}, ["metadata"]),
        ({"queue": "other"}, ["queue"]),
        ({"priority": 9}, ["priority"]),
        ({"budget": {"cost": 5.0}}, ["budget"]),
        ({"max_attempts": 5}, ["max_attempts"]),
        ({"max_steps": 10}, ["max_steps"]),
        ({"priority": 0, "metadata": {}}, ["metadata", "priority"]),
    ):
        with pytest.raises(IdempotencyConflictError) as caught:
            await rt.submit(WF, {"n": 1}, idempotency_key="order-1", **{**FIRST, **change})
        assert conflict(caught) == named
        assert first.run_id in str(caught.value) and ", ".join(named) in str(caught.value)
    with pytest.raises(IdempotencyConflictError):  # another input: refused as before
        await rt.submit(WF, {"n": 2}, idempotency_key="order-1", **FIRST)
    assert len(await rt.list_runs()) == 1
    # no metadata and empty metadata ask the same; the fingerprints are kept with the run
    plain = await rt.submit(WF, {}, idempotency_key="plain")
    assert (await rt.submit(WF, {}, idempotency_key="plain", metadata={})).created is False
    run = await rt.store.get_run(plain.run_id)
    assert set(run.metadata[IDEMPOTENCY_KEY]) == {*FIRST, "delay"}


def test_a_run_made_before_the_fingerprints_compares_its_input_only() -> None:
    asked = fingerprints(
        metadata=None,
        queue="q",
        priority=1,
        budget=None,
        max_attempts=None,
        max_steps=None,
        delay=None,
    )
    old = RunRecord("r1", "sub", RunStatus.PLANNED, metadata={"step_limit": 100})
    check_same_request("k", old, asked)  # written by an older tether: nothing to compare
    kept = RunRecord("r2", "sub", RunStatus.PLANNED, metadata={IDEMPOTENCY_KEY: asked})
    check_same_request("k", kept, asked)
    with pytest.raises(IdempotencyConflictError, match="another queue"):
        check_same_request("k", kept, {**asked, "queue": "other"})


async def test_numbers_are_compared_by_value_as_json_means_them(any_rt: Runtime) -> None:
    # one client's JSON writes 2, another's 2.0 for the same number: the same request
    sent = {"budget": {"cost": 2.0}, "metadata": {"weight": 1.0, "tags": [3.0]}, "priority": 1}
    first = await any_rt.submit(WF, {"n": 1}, idempotency_key="num", **sent)
    for again in (
        {"budget": {"cost": 2}, "metadata": {"weight": 1, "tags": [3]}, "priority": 1},
        sent,
    ):
        resent = await any_rt.submit(WF, {"n": 1}, idempotency_key="num", **again)
        assert (resent.run_id, resent.created) == (first.run_id, False)
    with pytest.raises(IdempotencyConflictError) as caught:  # another value is still refused
        await any_rt.submit(
            WF, {"n": 1}, idempotency_key="num", **{**sent, "budget": {"cost": 2.5}}
        )
    assert conflict(caught) == ["budget"]
    delayed = await any_rt.submit(WF, {"n": 1}, idempotency_key="later", delay=5)
    assert (await any_rt.submit(WF, {"n": 1}, idempotency_key="later", delay=5.0)).created is False
    assert delayed.created


def test_fingerprints_an_older_tether_kept_still_match_the_request_sent_alike() -> None:
    # an older tether hashed each number as it was sent: {"cost": 2.0} kept as 2.0's hash
    params: dict[str, Any] = {
        "metadata": {"weight": 0.5},
        "queue": "q",
        "priority": 1,
        "budget": {"cost": 2.0},
        "max_attempts": None,
        "max_steps": None,
        "delay": 3.0,
    }
    old = {name: serde.fingerprint(v)[:16] for name, v in params.items()}
    kept = RunRecord("r3", "sub", RunStatus.PLANNED, metadata={IDEMPOTENCY_KEY: old})
    check_same_request("k", kept, fingerprints(**params))  # sent alike: the same request
    other = fingerprints(**{**params, "budget": {"cost": 3.0}})
    with pytest.raises(IdempotencyConflictError, match="another budget"):
        check_same_request("k", kept, other)


async def test_a_thread_turn_sent_again_with_other_parameters_is_refused(any_rt: Runtime) -> None:
    turn = {"thread_id": "chat-1", "idempotency_key": "turn-1"}
    said = await any_rt.submit(WF, {"n": 1}, metadata={"lang": "en"}, **turn)
    resent = await any_rt.submit(WF, {"n": 1}, metadata={"lang": "en"}, **turn)
    assert (resent.run_id, resent.created) == (said.run_id, False)
    with pytest.raises(IdempotencyConflictError) as caught:
        await any_rt.submit(WF, {"n": 1}, metadata={"lang": "fr"}, **turn)
    assert conflict(caught) == ["metadata"]


async def test_a_full_queue_answers_the_same_request_and_refuses_another(
    any_rt: Runtime,
) -> None:
    store = any_rt.store
    if not isinstance(store, QueueControl):
        pytest.skip("this store keeps no queue limits")
    await store.set_queue_limit("queue", "small", max_depth=1)
    first = await any_rt.submit(WF, {"n": 1}, queue="small", idempotency_key="k", priority=1)
    again = await any_rt.submit(WF, {"n": 1}, queue="small", idempotency_key="k", priority=1)
    assert (again.run_id, again.created) == (first.run_id, False)
    with pytest.raises(IdempotencyConflictError) as caught:
        await any_rt.submit(WF, {"n": 1}, queue="small", idempotency_key="k", priority=2)
    assert conflict(caught) == ["priority"]
    with pytest.raises(QueueFullError):
        await any_rt.submit(WF, {"n": 1}, queue="small", idempotency_key="k2")


async def test_a_users_own_idempotency_metadata_is_kept_beside_the_fingerprints(
    any_rt: Runtime,
) -> None:
    # the fingerprints took the plain key "idempotency": a user's entry of that name (a common
    # one: an upstream request's id) was overwritten by them, and a resend found another value
    mine = {"idempotency": "upstream-req-9", "owner": "ops"}
    first = await any_rt.submit(WF, {"n": 1}, idempotency_key="order-9", metadata=mine)
    run = await any_rt.store.get_run(first.run_id)
    assert run.metadata["idempotency"] == "upstream-req-9"
    assert set(run.metadata[IDEMPOTENCY_KEY]) == {*FIRST, "delay"}
    assert IDEMPOTENCY_KEY.startswith("tether")  # a name clients cannot send (reserved)
    again = await any_rt.submit(WF, {"n": 1}, idempotency_key="order-9", metadata=mine)
    assert (again.run_id, again.created) == (first.run_id, False)
