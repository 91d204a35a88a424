"""What a node hands over to be kept besides its state writes (interrupt payloads, ``Send``
arguments, custom events, escalations, its errors) and what its journaled calls asked and got
back: refused with a typed error when the store cannot hold it, or kept as JSON, never a crash
at the commit.

Before: each of these made ``run()`` raise a bare ``TypeError`` (or, on SQLite, the driver's
``UnicodeEncodeError``) from the step's commit; the run was left FAILED with that error in place
of the node's, no node named; an exception whose message quoted undecodable text lost its own
type and message; a call that ran and returned a ``Decimal`` failed the run after the fact.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Command,
    EscalationSignal,
    Graph,
    InvalidInputError,
    InvalidUpdateError,
    RunContext,
    RunStatus,
    Runtime,
    Send,
    UnstorableValueError,
    interrupt,
)
from tether.tools import ToolExecutor, tool

BROKEN = b"caf\xe9".decode("utf-8", "surrogateescape")  # a Latin-1 byte read as UTF-8
"""Text holding a lone surrogate ('caf\\udce9'): not UTF-8, so no store can write it."""


class Box(TypedDict, total=False):
    kind: str
    out: Any
    seen: list[Any]


def _graph(name: str, node: Any, **extra: Any) -> Any:
    g = Graph(Box, name=name)
    g.add_node("work", node, **extra).add_edge(START, "work").add_edge("work", END)
    return g


async def _failed_with(rt: Runtime, wf: Any, inp: dict[str, Any], kind: str) -> dict[str, Any]:
    """Run ``wf``: it ends FAILED with ``kind`` from node ``work`` (``run()`` returns; the
    node's ``node_failed`` event and the state before the step are kept)."""
    res = await rt.run(wf, inp)
    assert res.status is RunStatus.FAILED, res
    assert res.error is not None and res.error["type"] == kind, res.error
    assert res.error["node"] == "work"
    assert (await rt.get_state(res.run_id)) == inp
    failed = [e for e in await rt.store.list_events(res.run_id) if e.type == "node_failed"]
    assert [e.node for e in failed] == ["work"]
    return res.error


# -- what a node hands over: refused, named, the step failed cleanly ---------------------------
async def test_custom_events_are_kept_as_json_whatever_they_hold(any_rt: Runtime) -> None:
    """An event is a record: kept, never a reason to fail the node. Before: a lone surrogate or
    a Decimal in ``ctx.emit`` data crashed the step's commit (a bare TypeError out of
    ``run()``). Live subscribers get the copy the store keeps."""

    def emit(s: Box, ctx: RunContext) -> dict[str, Any]:
        ctx.emit("note", {"text": BROKEN, "at": {"v": Decimal("1.50")}, "score": float("nan")})
        ctx.explain("because", quote=BROKEN)
        return {"out": "done"}

    wf = _graph("kept_emit", emit).compile()
    handle = await any_rt.start(wf, {"kind": "x"}, execute=False)
    watching = asyncio.create_task(_events(any_rt, handle.run_id))
    while not any_rt.bus.has_subscribers(handle.run_id):  # subscribed before the run executes
        await asyncio.sleep(0.01)
    await any_rt.recover_once()
    assert (await any_rt.wait(handle.run_id, timeout=60)).status is RunStatus.COMPLETED
    live = await asyncio.wait_for(watching, 60)
    kept = {"text": "caf\ufffd", "at": {"v": "1.50"}, "score": None}
    (note,) = [e for e in await any_rt.store.list_events(handle.run_id) if e.type == "note"]
    assert note.data == kept
    assert [e.data for e in live if e.type == "note"] == [kept]
    (why,) = [e for e in await any_rt.store.list_events(handle.run_id) if e.type == "rationale"]
    assert why.data["quote"] == "caf\ufffd" and why.data["text"] == "because"


async def _events(rt: Runtime, run_id: str) -> list[Any]:
    """The run's events as a subscriber following it sees them (until it completes)."""
    return [ev async for ev in rt.events(run_id)]


async def test_an_interrupt_payload_that_cannot_be_stored_fails_the_node(any_rt: Runtime) -> None:
    def ask(s: Box) -> dict[str, Any]:
        return {"out": interrupt({"question": "ok?", "quote": BROKEN})}

    wf = _graph("kept_ask", ask).compile()
    err = await _failed_with(any_rt, wf, {"kind": "x"}, "UnstorableValueError")
    assert "interrupt payload['quote']" in err["message"]
    with pytest.raises(UnstorableValueError) as info:  # what the node's code sees
        from tether.graph.state import check_kept

        check_kept({"quote": BROKEN}, "interrupt payload", "node 'work'")
    assert info.value.where == "interrupt payload['quote']"


async def test_send_arguments_that_cannot_be_stored_fail_the_step(any_rt: Runtime) -> None:
    """A ``Send``'s argument is kept in the checkpoint as its task's input: the worker sees
    exactly it after a crash, so what JSON would change (NaN) is refused like in state."""

    def fan(s: Box) -> Command:
        return Command(goto=[Send("each", {"n": float("nan")})])

    g = Graph(Box, name="kept_send")
    g.add_node("work", fan, destinations=["each"]).add_node("each", lambda a: {"out": a["n"]})
    g.add_edge(START, "work").add_edge("each", END)
    err = await _failed_with(any_rt, g.compile(), {"kind": "x"}, "UnstorableValueError")
    assert "Send('each') argument['n']" in err["message"] and "NaN" in err["message"]

    routed = Graph(Box, name="kept_route")
    routed.add_node("work", lambda s: {"out": 1}).add_node("each", lambda a: {"out": 2})
    routed.add_edge(START, "work").add_edge("each", END)
    routed.add_conditional_edges("work", lambda s: [Send("each", {"t": BROKEN})], ["each"])
    res = await any_rt.run(routed.compile(), {"kind": "x"})
    assert res.status is RunStatus.FAILED and res.error is not None
    assert res.error["type"] == "UnstorableValueError"
    assert "route from 'work'" in res.error["message"]


async def test_a_state_write_of_an_object_json_cannot_hold_is_the_nodes_invalid_update(
    any_rt: Runtime,
) -> None:
    """Before: a bare TypeError out of ``run()``, the run FAILED with no node named."""
    wf = _graph("kept_obj", lambda s: {"out": {"price": Decimal("9.99")}}).compile()
    err = await _failed_with(any_rt, wf, {"kind": "x"}, InvalidUpdateError.__name__)
    assert "out['price']" in err["message"] and "Decimal" in err["message"]


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
"""Binary bytes: kept as text they would come back with U+FFFD in place of what did not decode."""


async def test_binary_bytes_are_refused_where_they_would_come_back_changed(
    any_rt: Runtime,
) -> None:
    """Before: a node's write, the run's input or a resume value of binary bytes was taken;
    on SQLite and PostgreSQL the state read back held 'PNG\ufffd...' instead, the live value
    fine until the run was resumed, recovered or read."""
    wf = _graph("kept_png", lambda s: {"out": PNG}).compile()
    err = await _failed_with(any_rt, wf, {"kind": "x"}, InvalidUpdateError.__name__)
    assert "bytes that are not UTF-8 text" in err["message"] and "base64" in err["message"]
    with pytest.raises(InvalidInputError, match=r"'out'=.*bytes that are not UTF-8 text"):
        await any_rt.run(wf, {"out": [PNG]})

    def ask(s: Box) -> dict[str, Any]:
        return {"out": interrupt({"question": "the file?"})}

    asked = await any_rt.run(_graph("kept_png_ask", ask).compile(), {"kind": "x"})
    with pytest.raises(InvalidInputError, match=r"value=.*bytes that are not UTF-8 text"):
        await any_rt.resume(asked.run_id, PNG)
    done = await any_rt.resume(asked.run_id, b"plain text")  # bytes that decode: kept as text
    assert done.status is RunStatus.COMPLETED and done.state["out"] in (b"plain text", "plain text")
    assert (await any_rt.get_state(asked.run_id))["out"] == "plain text"


# -- what a run records about itself: always recorded ------------------------------------------
async def test_an_error_quoting_undecodable_text_keeps_its_own_type_and_message(
    any_rt: Runtime,
) -> None:
    def parse(s: Box) -> None:
        raise ValueError(f"cannot parse {BROKEN!s}")

    wf = _graph("kept_raise", parse).compile()
    err = await _failed_with(any_rt, wf, {"kind": "x"}, "ValueError")
    assert err["message"] == "cannot parse caf\ufffd"  # the surrogate scrubbed, nothing else
    assert "cannot parse caf\ufffd" in err["traceback"]


async def test_an_escalation_quoting_undecodable_text_parks_the_run(any_rt: Runtime) -> None:
    def stop(s: Box) -> None:
        raise EscalationSignal(f"refund for {BROKEN}?", kind="review", detail={"who": BROKEN})

    res = await any_rt.run(_graph("kept_escalate", stop).compile(), {"kind": "x"})
    assert res.status is RunStatus.ESCALATED
    run = await any_rt.store.get_run(res.run_id)
    assert run.escalation is not None and run.escalation["reason"] == "refund for caf\ufffd?"
    assert run.escalation["details"] == {"detail": {"who": "caf\ufffd"}}
    hops = await any_rt.store.list_transitions(res.run_id)
    assert hops[-1].reason == "refund for caf\ufffd?"


# -- what journaled calls asked and got back: kept as JSON, the same live and on replay --------
async def test_a_result_with_undecodable_text_is_kept_and_replayed_the_same(
    any_rt: Runtime,
) -> None:
    calls: list[str] = []

    async def read_then_ask(s: Box, ctx: RunContext) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            calls.append("read")
            return {"text": f"read {BROKEN}", "cost": Decimal("10.50"), "tags": ("a", "b")}

        got = await ctx.effect("read", read)
        answer = interrupt({"about": got["text"]})
        return {"out": answer, "seen": [got]}

    wf = _graph("kept_result", read_then_ask).compile()
    parked = await any_rt.run(wf, {"kind": "x"})
    assert parked.status is RunStatus.ESCALATED, parked.error
    assert parked.interrupts[0]["payload"] == {"about": "read caf\ufffd"}
    done = await any_rt.resume(parked.run_id, "fine")
    assert done.status is RunStatus.COMPLETED
    kept = {"text": "read caf\ufffd", "cost": "10.50", "tags": ["a", "b"]}
    assert done.state["seen"] == [kept]  # what the node saw live is what it saw on replay
    assert calls == ["read"]


async def test_a_result_the_journal_cannot_hold_stops_the_run_without_calling_again(
    any_rt: Runtime,
) -> None:
    """An integer beyond 64 bits: the call ran, its intent stays open, so the retry of the run
    asks a human what it returned (the effect is not idempotent) instead of calling again."""
    calls: list[int] = []

    async def allocate(s: Box, ctx: RunContext) -> dict[str, Any]:
        def make_id() -> int:
            calls.append(1)
            return 2**100

        return {"out": await ctx.effect("allocate", make_id)}

    wf = _graph("kept_huge", allocate).compile()
    err = await _failed_with(any_rt, wf, {"kind": "x"}, "UnstorableValueError")
    assert "effect call" in err["message"] and "the call ran" in err["message"]
    retried = await any_rt.resume(err_run := (await any_rt.list_runs())[0].run_id)
    assert retried.status is RunStatus.ESCALATED
    assert retried.escalation is not None
    assert retried.escalation["kind"] == "unknown_effect_outcome"
    assert "could not be journaled" in retried.escalation["reason"]
    assert calls == [1]
    done = await any_rt.resume(err_run, {"result": str(2**100)})
    assert done.status is RunStatus.COMPLETED and done.state["out"] == str(2**100)
    assert calls == [1]


async def test_a_request_the_journal_cannot_hold_is_refused_before_the_call(
    any_rt: Runtime,
) -> None:
    calls: list[int] = []

    async def call(s: Box, ctx: RunContext) -> dict[str, Any]:
        async def go() -> str:
            calls.append(1)
            return "done"

        ask = {"n": 2**70} if s["kind"] == "huge" else {"q": BROKEN}
        return {"out": await ctx.journaled("lookup", ask, go)}

    wf = _graph("kept_request", call).compile()
    err = await _failed_with(any_rt, wf, {"kind": "huge"}, "UnstorableValueError")
    assert "its request cannot be journaled" in err["message"] and "was not made" in err["message"]
    assert calls == []
    res = await any_rt.run(wf, {"kind": "text"})  # text is kept, scrubbed, and the call made
    assert res.status is RunStatus.COMPLETED and calls == [1]
    (effect,) = await any_rt.store.list_effects(res.run_id)
    assert effect.request == {"q": "caf\ufffd"} and effect.result == "done"


async def test_a_tool_returning_a_decimal_completes_the_run(any_rt: Runtime) -> None:
    """Before: the tool ran, then the run FAILED with 'cannot persist a value of type
    Decimal'; now the result is kept as pydantic writes it to JSON."""

    @tool(scope="read")
    async def quote(sku: str) -> dict[str, Any]:
        """Price a SKU."""
        return {"sku": sku, "price": Decimal("19.90")}

    tools = ToolExecutor([quote], any_rt.store)

    async def price(s: Box, ctx: RunContext) -> dict[str, Any]:
        result = await tools.call("quote", {"sku": "A1"}, ctx=ctx)
        return {"out": result.unwrap()}

    res = await any_rt.run(_graph("kept_tool", price, phase="tool").compile(), {"kind": "x"})
    assert res.status is RunStatus.COMPLETED, res.error
    assert res.state["out"] == {"sku": "A1", "price": "19.90"}


# -- values nested deeper than the store can write -----------------------------------------------
def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


async def test_input_nested_too_deep_is_refused_before_anything_is_stored(
    any_rt: Runtime,
) -> None:
    """Before: 255 to ~900 levels raised a bare TypeError ("Recursion limit reached") from the
    run's first write, deeper ones a RecursionError from copying the input; on a graph without a
    state schema too."""
    schemaless = Graph(name="kept_deep_plain")
    schemaless.add_node("work", lambda s: {"done": True}).add_edge(START, "work")
    typed = _graph("kept_deep_typed", lambda s: {"kind": "done"})
    for wf in (typed.compile(), schemaless.add_edge("work", END).compile()):
        for depth in (260, 100_000):
            with pytest.raises(InvalidInputError, match="nested deeper than 200 levels"):
                await any_rt.run(wf, {"out": nested(depth)})
        res = await any_rt.run(wf, {"out": nested(190)})  # deep, but within what is kept
        assert res.status is RunStatus.COMPLETED
        assert res.state["out"] == nested(190)
    assert len(await any_rt.list_runs()) == 2


async def test_values_a_node_hands_over_nested_too_deep_fail_the_node(any_rt: Runtime) -> None:
    def write(s: Box) -> dict[str, Any]:
        return {"out": nested(300)}

    def ask(s: Box) -> dict[str, Any]:
        return {"out": interrupt(nested(100_000))}

    async def call(s: Box, ctx: RunContext) -> dict[str, Any]:
        async def deep() -> Any:
            return nested(300)

        return {"out": await ctx.effect("deep", deep)}

    for name, node, kind in (
        ("kept_deep_write", write, "InvalidUpdateError"),
        ("kept_deep_ask", ask, "UnstorableValueError"),
        ("kept_deep_call", call, "UnstorableValueError"),
    ):
        err = await _failed_with(any_rt, _graph(name, node).compile(), {"kind": "x"}, kind)
        assert "nested deeper than" in err["message"], err


async def test_an_error_whose_str_fails_is_recorded_with_its_type(any_rt: Runtime) -> None:
    """Before: the failure handling itself raised (a RecursionError from ``str(exc)`` of an
    error quoting a deep value; any bug in an exception's ``__str__``) out of ``run()``."""

    class Broken(Exception):
        def __str__(self) -> str:
            raise AttributeError("no such field")

    def broken(s: Box) -> None:
        raise Broken()

    def deep(s: Box) -> None:
        raise ValueError(nested(100_000))

    err = await _failed_with(any_rt, _graph("kept_str", broken).compile(), {"kind": "x"}, "Broken")
    assert err["message"] == "<Broken whose str() raised AttributeError>"
    err = await _failed_with(
        any_rt, _graph("kept_repr", deep).compile(), {"kind": "x"}, "ValueError"
    )
    assert err["message"] == "<ValueError whose str() raised RecursionError>"
