"""Shadow mode: model B answers the live model A's requests on the side. B's tool calls are
never executed, its failures never fail the run, it is not in A's critical path, and the
parity report says "proceed" for models that agree and "halt rollout" for ones that don't."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.core.errors import ConfigurationError, InvalidInputError, ModelError
from tether.evaluation import DecisionWeights, ShadowModel, decision_distance, shadow_report
from tether.evaluation.shadow import sampled
from tether.llm.embeddings import HashingEmbedder
from tether.llm.fakes import FunctionModel, ScriptedModel, tool_call
from tether.llm.model import Model
from tether.llm.types import ModelRequest
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool

EMBED = HashingEmbedder(64)


class Ticket(TypedDict, total=False):
    text: str
    reply: str


def support_agent(model: Model, tools: ToolExecutor, name: str = "support") -> Any:
    """Asks the model, runs the tool calls it chose, answers with the last text."""

    async def agent(state: Ticket, ctx: RunContext) -> dict[str, Any]:
        answer = await model.chat(state["text"], tools=[c.spec() for c in tools.registry])
        for call in answer.tool_calls:
            await tools.call(call.name, call.arguments, ctx=ctx)
        return {"reply": answer.text or "done"}

    g = Graph(Ticket, name=name)
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    return g.compile()


def counting_tools() -> tuple[ToolExecutor, dict[str, int]]:
    count = {"lookup_order": 0, "delete_account": 0}

    @tool(scope="read")
    def lookup_order(order_id: int) -> dict[str, Any]:
        """Look an order up."""
        count["lookup_order"] += 1
        return {"order_id": order_id, "status": "shipped"}

    @tool(scope="destructive")
    def delete_account(user: str) -> str:
        """Delete a user's account."""
        count["delete_account"] += 1
        return "deleted"

    return ToolExecutor([lookup_order, delete_account]), count


async def test_the_shadow_models_tool_calls_are_never_executed(tmp_path: Path) -> None:
    tools, count = counting_tools()
    live = ScriptedModel([tool_call("lookup_order", {"order_id": 7})] * 3)
    candidate = ScriptedModel([tool_call("delete_account", {"user": "ann"})] * 3)
    store = SqliteStore(tmp_path / "runs.db")
    shadowed = ShadowModel(live, candidate, store=store, embedder=EMBED)
    wf = support_agent(shadowed, tools)
    async with Runtime(store) as rt:
        runs = [await rt.run(wf, {"text": f"where is order 7? ({i})"}) for i in range(3)]
        await shadowed.drain()
        assert all(r.completed for r in runs)
        # the live model's choice ran; the candidate's destructive call never did
        assert count == {"lookup_order": 3, "delete_account": 0}
        assert candidate.calls == 3  # it was asked, its answer only logged
        rows = await store.list_shadow("support")
        assert len(rows) == 3
        assert {r.run_id for r in rows} == {r.run_id for r in runs}
        row = rows[0]
        assert row.shadow is not None
        assert {k: row.shadow[k] for k in ("text", "tool_calls")} == {
            "text": "",
            "tool_calls": [{"name": "delete_account", "arguments": {"user": "ann"}}],
        }
        # with what each answer cost (counted: the scripted models report no usage)
        assert row.shadow["input_tokens"] > 0 and row.shadow["latency"] >= 0.0
        assert row.live["input_tokens"] == row.shadow["input_tokens"]  # the same request
        assert row.live["tool_calls"][0]["name"] == "lookup_order"
        assert row.tool_agrees is False and row.distance is not None
        # B was not journaled, governed or counted in the run: one model call per run
        for r in runs:
            kinds = [e.kind for e in await store.list_effects(r.run_id)]
            assert kinds == ["model", "tool"]
            usage = await store.model_usage(r.run_id)
            assert [u.model for u in usage] == ["scripted:scripted"]
        report = await shadow_report(store, "support")
    assert report.verdict == "halt rollout"
    # different tool (1.0), no common tool so arguments 1.0, both texts empty (0.0):
    # 0.5 * 1 + 0.3 * 1 + 0.2 * 0 = 0.8 on every call
    assert report.mean_distance == pytest.approx(0.8)
    assert (report.samples, report.compared, report.failed) == (3, 3, 0)
    assert report.tool_agreement == 0.0 and report.above_threshold == 3


async def test_parity_of_models_that_agree() -> None:
    tools, count = counting_tools()
    script = [tool_call("lookup_order", {"order_id": 7}), "Your order shipped."]
    live, candidate = ScriptedModel(script, cycle=True), ScriptedModel(script, cycle=True)
    store = MemoryStore()
    shadowed = ShadowModel(live, candidate, store=store, embedder=EMBED)
    async with Runtime(store) as rt:
        for i in range(4):
            assert (await rt.run(support_agent(shadowed, tools), {"text": f"order {i}"})).completed
        await shadowed.drain()
    report = await shadow_report(store, "support")
    assert (report.samples, report.compared, report.mean_distance) == (4, 4, 0.0)
    assert (report.parity, report.verdict, report.tool_agreement) == (1.0, "proceed", 1.0)
    assert count["lookup_order"] == 2 and count["delete_account"] == 0


async def test_a_failing_shadow_never_fails_the_run() -> None:
    tools, _ = counting_tools()
    live = ScriptedModel(["All good."], cycle=True)
    broken = ScriptedModel([ModelError("candidate endpoint is down")], cycle=True)
    store = MemoryStore()
    shadowed = ShadowModel(live, broken, store=store, embedder=EMBED)
    async with Runtime(store) as rt:
        res = await rt.run(support_agent(shadowed, tools), {"text": "hi"})
        await shadowed.drain()
    assert res.completed and res.state["reply"] == "All good."
    report = await shadow_report(store, "support")
    # a candidate that fails is no candidate to roll out (it was "no data", exit 0)
    assert (report.samples, report.failed, report.compared) == (1, 1, 0)
    assert report.verdict == "halt rollout"
    (row,) = await store.list_shadow("support")
    assert row.error is not None and "candidate endpoint is down" in row.error


async def test_the_shadow_is_not_in_the_live_answers_path() -> None:
    """B waits on an event nobody sets until the run is over: the run completes anyway."""
    tools, _ = counting_tools()
    release = asyncio.Event()

    async def slow(request: ModelRequest) -> str:
        await release.wait()
        return "All good."

    store = MemoryStore()
    shadowed = ShadowModel(
        ScriptedModel(["All good."]), FunctionModel(slow), store=store, embedder=EMBED
    )
    async with Runtime(store) as rt:
        res = await rt.run(support_agent(shadowed, tools), {"text": "hi"})
        assert res.completed
        assert await store.list_shadow("support") == []  # B has not answered yet
        release.set()
        await shadowed.drain()
        (row,) = await store.list_shadow("support")
    assert row.distance == 0.0 and row.run_id == res.run_id


async def test_sampling_is_deterministic_by_call_key() -> None:
    keys = [f"run-{i}:1:agent:0:shadow:0:abc" for i in range(2000)]
    chosen = [k for k in keys if sampled(k, 0.25)]
    assert chosen == [k for k in keys if sampled(k, 0.25)]  # the same calls every time
    assert 400 < len(chosen) < 600  # about a quarter
    assert not any(sampled(k, 0.0) for k in keys) and all(sampled(k, 1.0) for k in keys)
    # in runs: the rows are exactly the sampled calls
    store = MemoryStore()
    tools, _ = counting_tools()
    shadowed = ShadowModel(
        ScriptedModel(["ok"], cycle=True), ScriptedModel(["ok"], cycle=True),
        store=store, rate=0.3, embedder=EMBED,
    )  # fmt: skip
    async with Runtime(store) as rt:
        for i in range(40):
            await rt.run(support_agent(shadowed, tools), {"text": f"t{i}"})
        await shadowed.drain()
    rows = await store.list_shadow("support", limit=100)
    assert all(sampled(r.call_key.rsplit(":", 1)[0], 0.3) for r in rows)
    assert 0 < len(rows) < 40
    with pytest.raises(ConfigurationError):
        ShadowModel(ScriptedModel([]), ScriptedModel([]), rate=1.5)


async def test_decision_distance_parts() -> None:
    a = {"text": "", "tool_calls": [{"name": "lookup", "arguments": {"id": 1}}]}
    same = await decision_distance(a, a, EMBED)
    assert same.distance == 0.0 and same.tool_agrees
    other_args = {"text": "", "tool_calls": [{"name": "lookup", "arguments": {"id": 2}}]}
    d = await decision_distance(a, other_args, EMBED)
    # same tool (0), different arguments (0 < args <= 1), same text (0): 0.3 * args
    assert d.tool == 0.0 and 0.0 < d.args <= 1.0 and d.distance == pytest.approx(0.3 * d.args)
    texts = await decision_distance({"text": "yes", "tool_calls": []},
                                    {"text": "", "tool_calls": []}, EMBED)  # fmt: skip
    assert texts.distance == 1.0  # text only; one side empty
    with pytest.raises(ConfigurationError):
        DecisionWeights(tool=0.9, args=0.3, text=0.2)
    with pytest.raises(InvalidInputError):
        await shadow_report(MemoryStore(), "support", threshold=2.0)


@pytest.mark.parametrize(
    "weights",
    [
        {"tool": math.nan, "args": 0.5, "text": 0.5},  # NaN compared false with both bounds
        {"tool": 0.5, "args": 0.5, "text": math.nan},
        {"tool": math.inf, "args": -math.inf, "text": 1.0},
        {"tool": "0.5", "args": 0.3, "text": 0.2},
    ],
)
async def test_decision_weights_must_be_finite(weights: dict[str, Any]) -> None:
    """A NaN weight made every distance NaN, and the parity report "proceed" (memory) or "no
    data" (SQL, where NaN is stored as NULL) whatever the candidate answered."""
    with pytest.raises(ConfigurationError, match="finite numbers"):
        DecisionWeights(**weights)


async def test_a_slow_shadow_never_piles_up_more_than_max_in_flight_calls() -> None:
    """Before: every sampled call started a B task, awaited by nobody: with B slower than the
    calls it shadowed (or stalled), its tasks, connections and spending grew without bound."""
    release = asyncio.Event()
    started: list[str] = []

    async def slow(request: ModelRequest) -> str:
        started.append(str(request.messages[-1].content))
        await release.wait()
        return "b's answer"

    live = FunctionModel(lambda r: "a's answer", name="a")
    shadowed = ShadowModel(
        live, FunctionModel(slow, name="b"), embedder=EMBED, max_in_flight=4, keep=100
    )
    for i in range(50):
        assert (await shadowed.chat(f"question {i}")).text == "a's answer"  # A never waits
    await asyncio.sleep(0)  # let the B tasks start
    assert len(started) == 4 and shadowed.skipped == 46
    release.set()
    await shadowed.drain()
    assert len(shadowed.rows) == 4 and all(r.error is None for r in shadowed.rows)
    await shadowed.chat("question 50")  # room again: shadowed
    await shadowed.drain()
    assert len(started) == 5 and len(shadowed.rows) == 5
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        ShadowModel(live, live, max_in_flight=0)


@pytest.mark.parametrize(
    ("compared", "failed", "mean", "verdict"),
    [
        (1, 9, 0.0, "halt rollout"),  # 9 failures in 10: matching on the tenth does not pass
        (99, 1, 0.0, "proceed"),  # one failure in 100 is a distance of 0.01
        (90, 10, 0.0, "proceed"),  # exactly the threshold: not above it
        (0, 0, None, "no data"),
    ],
)
def test_failed_shadow_calls_count_as_full_disagreement(
    compared: int, failed: int, mean: float | None, verdict: str
) -> None:
    from tether.evaluation.shadow_report import ParityReport

    report = ParityReport("wf", 0.1, compared + failed, compared, failed, mean, mean, mean, 0, None)
    assert report.verdict == verdict
