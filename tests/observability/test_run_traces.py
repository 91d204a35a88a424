"""A run is one trace: the workflow span, a span per step and node, ``invoke_agent`` for agent
nodes, ``chat`` and ``execute_tool`` under the node that makes the call, governance decisions
and trips as span events, child runs under their parent's node."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.governance.refund_app import Ledger, build
from tether import START, Graph, RunContext, RunStatus, Runtime
from tether.llm import ScriptedModel
from tether.observability import configure_tracing, run_trace_ids, shutdown_tracing
from tether.store.memory import MemoryStore
from tether.tools import ToolExecutor, tool


class S(TypedDict, total=False):
    a: str
    b: str


@tool()
async def search(q: str) -> str:
    return f"found {q}"


def _workflow(model: ScriptedModel) -> Any:
    tools = ToolExecutor([search])

    async def ask(state: S) -> dict[str, Any]:
        return {"a": (await model.chat("what is up?")).text}

    async def act(state: S, ctx: RunContext) -> dict[str, Any]:
        got = await tools.call("search", {"q": "secret query"}, ctx=ctx)
        return {"b": str(got.value)}

    g = Graph(S, name="traced")
    g.add_node("ask", ask).add_node("act", act, phase="tool")
    g.add_edge(START, "ask").add_edge("ask", "act")
    return g.compile()


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (got,) = [s for s in spans if s.name == name]
    return got


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_run_is_one_trace_of_steps_nodes_and_calls(traced: InMemorySpanExporter) -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(_workflow(ScriptedModel(["hello"])), {})
        run = await rt.get_run(res.run_id)
    spans = list(traced.get_finished_spans())
    assert sorted(s.name for s in spans) == sorted(
        [
            "invoke_workflow traced",
            "step 1",
            "invoke_agent ask",
            "chat scripted",
            "step 2",
            "node act",
            "execute_tool search",
        ]
    )
    ids = run_trace_ids(res.run_id, run.metadata)
    assert run.metadata["trace"]["span_id"] == f"{ids.span_id:016x}"
    assert {s.context.trace_id for s in spans} == {ids.trace_id}
    root = _one(spans, "invoke_workflow traced")
    assert root.context.span_id == ids.span_id and root.parent is None
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "invoke_workflow"
    assert attrs["gen_ai.workflow.name"] == "traced"
    assert attrs["tether.run_id"] == res.run_id and attrs["tether.run.status"] == "COMPLETED"
    step1, step2 = _one(spans, "step 1"), _one(spans, "step 2")
    assert _parent(step1) == _parent(step2) == root.context.span_id
    ask, act = _one(spans, "invoke_agent ask"), _one(spans, "node act")
    assert _parent(ask) == step1.context.span_id and _parent(act) == step2.context.span_id
    assert dict(ask.attributes or {})["gen_ai.agent.name"] == "ask"
    assert dict(act.attributes or {})["tether.phase"] == "tool"
    chat, tool_span = _one(spans, "chat scripted"), _one(spans, "execute_tool search")
    assert _parent(chat) == ask.context.span_id and _parent(tool_span) == act.context.span_id
    t = dict(tool_span.attributes or {})
    assert t["gen_ai.operation.name"] == "execute_tool" and t["gen_ai.tool.name"] == "search"
    assert t["tether.tool.scope"] == "read" and t["tether.outcome"] == "ok"
    assert t["tether.attempts"] == 1 and t["tether.tool.retries"] == 0
    # content capture is off: no prompt, answer, arguments or result anywhere
    for s in spans:
        keys = set((s.attributes or {}).keys())
        assert not keys & {
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
        }


async def test_content_is_recorded_only_when_opted_in() -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(exporter, capture_content=True)
    try:
        async with Runtime(MemoryStore(), recover=False) as rt:
            await rt.run(_workflow(ScriptedModel(["hello"])), {})
    finally:
        from tether.observability import shutdown_tracing

        shutdown_tracing()
    spans = list(exporter.get_finished_spans())
    chat = dict(_one(spans, "chat scripted").attributes or {})
    assert "what is up?" in str(chat["gen_ai.input.messages"])
    assert "hello" in str(chat["gen_ai.output.messages"])
    tool_attrs = dict(_one(spans, "execute_tool search").attributes or {})
    assert "secret query" in str(tool_attrs["gen_ai.tool.call.arguments"])
    assert "found secret query" in str(tool_attrs["gen_ai.tool.call.result"])


class P(TypedDict, total=False):
    a: str
    sub: str


async def test_child_runs_nest_under_the_parent_node(traced: InMemorySpanExporter) -> None:
    child = Graph(P, name="child")
    child.add_node("inner", lambda s: {"sub": "done"}).add_edge(START, "inner")
    parent = Graph(P, name="parent")
    parent.add_node("first", lambda s: {"a": "x"}).add_node("delegate", child.compile())
    parent.add_edge(START, "first").add_edge("first", "delegate")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(parent.compile(), {})
        assert res.status is RunStatus.COMPLETED
    spans = list(traced.get_finished_spans())
    assert len({s.context.trace_id for s in spans}) == 1
    node = _one(spans, "invoke_agent delegate")
    child_root = _one(spans, "invoke_workflow child")
    assert _parent(child_root) == node.context.span_id
    assert dict(child_root.attributes or {})["tether.parent_run_id"] == res.run_id
    inner = _one(spans, "invoke_agent inner")
    child_step = next(s for s in spans if s.context.span_id == _parent(inner))
    assert _parent(child_step) == child_root.context.span_id
    parent_root = _one(spans, "invoke_workflow parent")
    assert parent_root.parent is None


async def test_a_run_started_inside_a_span_nests_under_it(traced: InMemorySpanExporter) -> None:
    from tether.observability.tracing import tracer

    app_tracer = tracer("my.app")
    async with Runtime(MemoryStore(), recover=False) as rt:
        with app_tracer.start_as_current_span("handle request") as request_span:
            await rt.run(_workflow(ScriptedModel(["hi"])), {})
    spans = list(traced.get_finished_spans())
    root = _one(spans, "invoke_workflow traced")
    assert _parent(root) == request_span.get_span_context().span_id
    assert {s.context.trace_id for s in spans} == {request_span.get_span_context().trace_id}


async def test_a_fork_is_a_trace_of_its_own(traced: InMemorySpanExporter) -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(_workflow(ScriptedModel(["a", "b"])), {})
        fork = await rt.fork(res.run_id, step=1)
        await rt.wait(fork.run_id)
        parent_ids = run_trace_ids(res.run_id, (await rt.get_run(res.run_id)).metadata)
        fork_ids = run_trace_ids(fork.run_id, (await rt.get_run(fork.run_id)).metadata)
    assert fork_ids.span_id != parent_ids.span_id
    roots = [s for s in traced.get_finished_spans() if s.name == "invoke_workflow traced"]
    assert len(roots) == 2 and len({r.context.span_id for r in roots}) == 2


async def test_trips_and_decisions_are_span_events(
    traced: InMemorySpanExporter, tmp_path: Path
) -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(build(Ledger(tmp_path / "ledger.txt")), {"order_id": 7})
    assert res.status is RunStatus.ESCALATED
    spans = list(traced.get_finished_spans())
    tripped = [s for s in spans if any(e.name == "loop_guard_tripped" for e in s.events)]
    (tool_span,) = tripped  # the trip happened while asking for the 4th refund
    assert tool_span.name == "execute_tool refund_order"
    assert tool_span.status.status_code is StatusCode.ERROR
    event = next(e for e in tool_span.events if e.name == "loop_guard_tripped")
    assert dict(event.attributes or {})["count"] == 3
    assert "args" not in dict(event.attributes or {})  # content capture is off
    escalated = [s for s in spans if any(e.name == "escalated" for e in s.events)]
    assert [s.name for s in escalated] == ["step 4"]
    assert dict(escalated[0].attributes or {})["tether.run.status"] == "ESCALATED"
    # an ESCALATED run has not ended: its workflow span is exported when it does
    assert not [s for s in spans if s.name.startswith("invoke_workflow")]


async def test_an_application_provider_gets_the_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    configure_tracing(provider=provider)
    try:
        async with Runtime(MemoryStore(), recover=False) as rt:
            await rt.run(_workflow(ScriptedModel(["x"])), {})
    finally:
        from tether.observability import shutdown_tracing

        shutdown_tracing()
    assert "invoke_workflow traced" in {s.name for s in exporter.get_finished_spans()}
    assert trace.get_tracer_provider() is not provider  # tether set nothing globally


async def test_a_parked_run_cancelled_later_ends_its_trace(
    traced: InMemorySpanExporter, tmp_path: Path
) -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(build(Ledger(tmp_path / "ledger.txt")), {"order_id": 7})
        assert not [s for s in traced.get_finished_spans() if s.name.startswith("invoke_wo")]
        await rt.cancel(res.run_id, reason="enough")
        run = await rt.get_run(res.run_id)
    (root,) = [s for s in traced.get_finished_spans() if s.name.startswith("invoke_workflow")]
    assert root.context.span_id == run_trace_ids(res.run_id, run.metadata).span_id
    assert dict(root.attributes or {})["tether.run.status"] == "CANCELLED"
    steps = [s for s in traced.get_finished_spans() if s.name.startswith("step ")]
    assert {_parent(s) for s in steps} == {root.context.span_id}


async def test_policy_decisions_approvals_and_budget_trips_are_span_events(
    traced: InMemorySpanExporter,
) -> None:
    from tests.governance.policy_agents import Ledger as Payments
    from tests.governance.policy_agents import agent_workflow, make_tools
    from tether.governance import Budget, Governance, PolicySet, Rule
    from tether.llm.fakes import tool_call

    deny = Rule("no-big-refunds", "deny", tool="refund", args={"$.amount": {">": 500}})
    model = ScriptedModel(
        [
            tool_call("refund", {"account": "ACC-1", "amount": 900}),  # denied
            tool_call("delete_account", {"account": "ACC-1"}),  # escalated: an approval
        ]
    )
    gov = Governance(policies=PolicySet([deny]))
    wf = agent_workflow(model, make_tools(Payments()), gov)
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"request": "refund, then close my account"})
    assert res.status is RunStatus.ESCALATED
    spans = list(traced.get_finished_spans())
    decided = {
        s.name: [dict(e.attributes or {}) for e in s.events if e.name == "policy_decision"]
        for s in spans
        if s.name.startswith("execute_tool")
    }
    assert [(d["action"], d["rule"]) for d in decided["execute_tool refund"]] == [
        ("deny", "no-big-refunds")
    ]
    assert [d["action"] for d in decided["execute_tool delete_account"]] == ["escalate"]
    asked = [s.name for s in spans if any(e.name == "approval_requested" for e in s.events)]
    assert asked == ["execute_tool delete_account"]

    traced.clear()
    looping = ScriptedModel([tool_call("lookup", {"order": n}) for n in range(5)])
    capped = Governance(budget=Budget(tool_calls=2))
    wf = agent_workflow(looping, make_tools(Payments()), capped)
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"request": "look everything up"})
    assert res.status is RunStatus.ESCALATED and res.escalation is not None
    spans = list(traced.get_finished_spans())
    trips = [
        (s.name, dict(e.attributes or {})) for s in spans for e in s.events if e.name == "escalated"
    ]
    assert [(name, attrs["kind"]) for name, attrs in trips] == [("step 1", "budget")]
    assert '"dimension":"tool_calls"' in str(trips[0][1]["details"])


async def test_captured_content_of_a_governed_run_passed_the_pii_vault() -> None:
    from tests.governance.test_pii_guard import RAW, received, workflow
    from tether.core.messages import ToolCall
    from tether.governance import PiiDetector, PiiGuard, PiiKey
    from tether.llm.types import ModelResponse

    exporter = InMemorySpanExporter()
    configure_tracing(exporter, capture_content=True)
    received.clear()
    answer = ModelResponse(
        text="I will mail <EMAIL_ADDRESS_1>.",
        tool_calls=(
            ToolCall(
                id="c1",
                name="send_email",
                arguments={"to": "<EMAIL_ADDRESS_1>", "body": "<PHONE_NUMBER_1>"},
            ),
        ),
    )
    guard = PiiGuard(key=PiiKey.generate(), detector=PiiDetector(ner=False), egress=["send_email"])
    try:
        async with Runtime(MemoryStore()) as rt:
            res = await rt.run(workflow(ScriptedModel([answer]), guard), {})
        assert res.status is RunStatus.COMPLETED, res.error
    finally:
        shutdown_tracing()
    assert received["send_email"] == {"to": RAW[0], "body": RAW[1]}  # egress got real values
    spans = list(exporter.get_finished_spans())
    chat = next(s for s in spans if s.name.startswith("chat"))
    prompt = str(dict(chat.attributes or {}).get("gen_ai.input.messages"))
    assert "<EMAIL_ADDRESS_1>" in prompt  # content was captured, as the model saw it
    sent = _one(spans, "execute_tool send_email")
    assert "<EMAIL_ADDRESS_1>" in str(dict(sent.attributes or {}).get("gen_ai.tool.call.arguments"))
    everything = repr(
        [(s.name, dict(s.attributes or {}), [e.attributes for e in s.events]) for s in spans]
    )
    for raw in RAW:
        assert raw not in everything


async def test_a_tool_span_counts_the_retries_of_its_call(traced: InMemorySpanExporter) -> None:
    from tether.core.errors import ToolTransientError
    from tether.tools import ToolRetry

    failures = {"left": 2}

    @tool(retry=ToolRetry(max_attempts=3, initial_interval=0.0, jitter=False))
    async def flaky(q: str) -> str:
        if failures["left"]:
            failures["left"] -= 1
            raise ToolTransientError("503 from upstream", tool="flaky")
        return f"found {q}"

    tools = ToolExecutor([flaky])

    async def act(state: S, ctx: RunContext) -> dict[str, Any]:
        got = await tools.call("flaky", {"q": "x"}, ctx=ctx)
        return {"b": str(got.value)}

    g = Graph(S, name="flaky")
    g.add_node("act", act, phase="tool")
    g.add_edge(START, "act")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(g.compile(), {})
    assert res.completed and res.state["b"] == "found x"
    t = dict(_one(list(traced.get_finished_spans()), "execute_tool flaky").attributes or {})
    assert (t["tether.outcome"], t["tether.attempts"], t["tether.tool.retries"]) == ("ok", 3, 2)


async def test_a_governed_tool_s_error_message_stays_out_of_the_trace(
    traced: InMemorySpanExporter,
) -> None:
    """A trusted-egress tool gets the real values back from the PII vault; when it failed, its
    error message (``mailbox ada@example.com is full``) became the ERROR status description of
    its ``execute_tool`` span and went to the collector, though its results stay out of the
    trace for that very reason. The span keeps the ERROR status and ``error.type``."""
    from tether.core.messages import Message, ToolCall
    from tether.governance import Governance, PiiDetector, PiiGuard, PiiKey
    from tether.llm.types import ModelResponse

    raw = "ada@example.com"

    @tool(scope="write", idempotent=True)
    def send_email(to: str, body: str) -> str:
        raise RuntimeError(f"mailbox {to} is full")

    tools = ToolExecutor([send_email])
    call = ToolCall(id="c1", name="send_email", arguments={"to": "<EMAIL_ADDRESS_1>", "body": "hi"})
    model = ScriptedModel([ModelResponse(text="mailing", tool_calls=(call,))])

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        reply = await model.chat([Message.user(f"mail {raw} please")])
        got = await tools.call("send_email", reply.tool_calls[0].arguments, ctx=ctx)
        assert not got.ok and raw in str(got.error)  # the node still sees what happened
        return {"a": "not sent"}

    guard = PiiGuard(key=PiiKey.generate(), detector=PiiDetector(ner=False), egress=["send_email"])
    g = Graph(S, name="mailer")
    g.add_node("agent", agent).add_edge(START, "agent")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(g.compile(governance=Governance(parts=[guard])), {})
    assert res.status is RunStatus.COMPLETED, res.error
    spans = list(traced.get_finished_spans())
    sent = _one(spans, "execute_tool send_email")
    assert sent.status.status_code is StatusCode.ERROR
    assert dict(sent.attributes or {})["error.type"] == "ToolError"
    everything = repr(
        [
            (
                s.name,
                s.status.description,
                dict(s.attributes or {}),
                [e.attributes for e in s.events],
            )
            for s in spans
        ]
    )
    assert raw not in everything


@pytest.mark.parametrize("again", ["retry", "resume"])
async def test_a_failed_run_run_again_is_not_a_second_span_with_the_same_id(
    traced: InMemorySpanExporter, again: str
) -> None:
    """A FAILED run's invoke_workflow span is exported when it fails; retried (or resumed) it
    completed and exported a second span with the very same id in the same trace, which
    backends show as a duplicate or merge at random. The next execution's span has an id of
    its own, nested under the failed one, and its steps nest under it."""
    attempts = {"n": 0}

    def flaky(state: S) -> dict[str, Any]:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("the first time")
        return {"a": "done"}

    g = Graph(S, name="flaky")
    g.add_node("work", flaky).add_edge(START, "work")
    wf = g.compile()
    async with Runtime(MemoryStore(), workflows=[wf]) as rt:
        failed = await rt.run(wf, {})
        assert failed.status is RunStatus.FAILED
        if again == "retry":
            done = await (await rt.retry(failed.run_id)).wait()
        else:
            done = await rt.resume(failed.run_id)
        assert done.status is RunStatus.COMPLETED
    spans = list(traced.get_finished_spans())
    first, second = [s for s in spans if s.name == "invoke_workflow flaky"]
    assert dict(first.attributes or {})["tether.run.status"] == "FAILED"
    assert dict(second.attributes or {})["tether.run.status"] == "COMPLETED"
    assert second.context.span_id != first.context.span_id
    assert _parent(second) == first.context.span_id
    assert len({s.context.span_id for s in spans}) == len(spans)  # no id exported twice
    assert {s.context.trace_id for s in spans} == {first.context.trace_id}
    steps = [s for s in spans if s.name == "step 1"]
    assert [_parent(s) for s in steps] == [first.context.span_id, second.context.span_id]
