"""A compiled workflow as a node (``tether.graph.subgraph``): a child run that failed is
retried when its parent is, and one parked at a breakpoint or its step limit is resumed
with its parent."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, RetryPolicy, RunStatus, Runtime, append


class Job(TypedDict, total=False):
    log: Annotated[list[str], append]


JAMMED: list[bool] = []
"""While it holds True, the child's node raises (one entry used up per call)."""


def work(state: Job) -> dict[str, Any]:
    if JAMMED and JAMMED.pop(0):
        raise ConnectionError("the upstream service is down")
    return {"log": ["worked"]}


def _child() -> Any:
    g = Graph(Job, name="sub_child")
    g.add_node("prep", lambda s: {"log": ["prepped"]}).add_node("work", work)
    g.add_edge(START, "prep").add_edge("prep", "work").add_edge("work", END)
    return g.compile()


def _parent(name: str, retry: RetryPolicy | None = None) -> Any:
    g = Graph(Job, name=name)
    g.add_node("sub", _child(), retry=retry).add_node("after", lambda s: {"log": ["after"]})
    g.add_edge(START, "sub").add_edge("sub", "after").add_edge("after", END)
    return g.compile()


async def test_resuming_a_parent_failed_by_its_child_retries_the_child(rt: Runtime) -> None:
    # the child stayed FAILED, so each resume of the parent failed again at once with the
    # child's old error, and nothing short of resuming the child by hand got it going
    JAMMED[:] = [True]
    failed = await rt.run(_parent("sub_resumed"), {})
    assert failed.status is RunStatus.FAILED
    (kid,) = await rt.list_runs(parent_run_id=failed.run_id)
    assert kid.status is RunStatus.FAILED
    res = await rt.resume(failed.run_id)
    assert res.status is RunStatus.COMPLETED
    assert res.state["log"] == ["prepped", "worked", "after"]
    (again,) = await rt.list_runs(parent_run_id=failed.run_id)
    assert again.run_id == kid.run_id and again.status is RunStatus.COMPLETED
    hist = await rt.history(kid.run_id)
    assert [h.nodes for h in hist] == [[], ["prep"], ["work"]]  # prep did not run again


async def test_a_subgraph_node_retry_policy_retries_its_failed_child(rt: Runtime) -> None:
    JAMMED[:] = [True, True]
    policy = RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False)
    res = await rt.run(_parent("sub_policy", policy), {})
    assert res.status is RunStatus.COMPLETED
    assert res.state["log"] == ["prepped", "worked", "after"]
    JAMMED[:] = [True, True, True]
    failed = await rt.run(_parent("sub_policy_out", policy), {})
    assert failed.status is RunStatus.FAILED  # the policy's attempts are all it gets
    assert JAMMED == []


def _say(word: str) -> Any:
    return lambda s: {"log": [word]}


def _stepping(name: str, nodes: tuple[str, ...] = ("one", "two"), **compiled: Any) -> Any:
    child = Graph(Job, name=f"{name}_child")
    prev = START
    for node in nodes:
        child.add_node(node, _say(node)).add_edge(prev, node)
        prev = node
    child.add_edge(prev, END)
    g = Graph(Job, name=name)
    g.add_node("sub", child.compile(**compiled)).add_node("after", lambda s: {"log": ["after"]})
    g.add_edge(START, "sub").add_edge("sub", "after").add_edge("after", END)
    return g.compile()


async def test_resuming_a_parent_goes_past_its_child_s_breakpoint(rt: Runtime) -> None:
    # the parent's escalation said "resume the run to go on", but each resume of the parent
    # found the child still at its breakpoint and parked again: no resume got past it
    parked = await rt.run(_stepping("sub_bp", interrupt_before=["two"]), {})
    assert parked.status is RunStatus.ESCALATED
    assert parked.escalation is not None and parked.escalation["kind"] == "breakpoint"
    res = await rt.resume(parked.run_id)
    assert res.status is RunStatus.COMPLETED
    assert res.state["log"] == ["one", "two", "after"]
    trs = await rt.store.list_transitions(parked.run_id)
    assert trs[-3].reason.startswith("resumed its child run")


async def test_resuming_a_parent_grants_its_child_more_steps(rt: Runtime) -> None:
    wf = _stepping("sub_steps", ("one", "two", "three"))
    async with Runtime(rt.store, workflows=[wf], recover=False, max_steps=2) as tight:
        parked = await tight.run(wf, {})  # the child, given 2 steps too, needs 3
        assert parked.escalation is not None and parked.escalation["kind"] == "step_limit"
        limit = (await tight.get_run(parked.run_id)).metadata["step_limit"]
        res = await tight.resume(parked.run_id, max_steps=5)
        assert res.status is RunStatus.COMPLETED
        assert res.state["log"] == ["one", "two", "three", "after"]
        # the parent did not run out of steps: its own limit is not raised
        assert res.record.metadata["step_limit"] == limit


async def test_a_child_resumed_directly_first_is_followed_as_it_is(rt: Runtime) -> None:
    parked = await rt.run(_stepping("sub_direct", interrupt_before=["two"]), {})
    (kid,) = await rt.list_runs(parent_run_id=parked.run_id)
    assert (await rt.resume(kid.run_id)).status is RunStatus.COMPLETED
    res = await rt.resume(parked.run_id)
    assert res.status is RunStatus.COMPLETED
    assert res.state["log"] == ["one", "two", "after"]
