"""The Model protocol's public entry point: requests, fakes, streaming timings, usage, cost,
and journaling inside a run (replay returns the recorded answer, the model is not called)."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunStatus, Runtime, interrupt
from tether.core.errors import InvalidInputError, ModelError, ModelTransientError
from tether.llm import (
    FunctionModel,
    Message,
    ModelRequest,
    ModelResponse,
    Price,
    PriceTable,
    ScriptedModel,
    ToolSpec,
    Usage,
    tool_call,
)
from tether.store.memory import MemoryStore


async def test_a_string_is_one_user_turn_and_usage_is_estimated() -> None:
    model = ScriptedModel(["hello there"])
    out = await model.chat("hi")
    assert out.text == "hello there"
    assert out.model == "scripted:scripted"
    assert model.requests[0].messages == (Message.user("hi"),)
    assert out.usage.estimated and out.usage.output_tokens == 3 and out.usage.input_tokens == 1
    assert out.cost == 0.0  # scripted models are free in the default price table
    assert out.timing.latency > 0 and out.timing.ttft is None


async def test_scripted_replies_cover_tool_calls_dicts_and_errors() -> None:
    model = ScriptedModel(
        [tool_call("search", {"q": "tether"}), {"a": 1}, ModelTransientError("boom")]
    )
    first = await model.chat("find it", tools=[ToolSpec(name="search")])
    assert first.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("search", {"q": "tether"})]
    assert first.message().tool_calls == first.tool_calls
    assert (await model.chat("json")).parsed_json() == {"a": 1}
    with pytest.raises(ModelTransientError, match="boom"):
        await model.chat("fail")
    with pytest.raises(ModelError, match="no reply left"):
        await model.chat("more")
    assert model.calls == 4


async def test_function_model_sees_the_request() -> None:
    async def echo(request: ModelRequest) -> str:
        return f"{request.system_prompt}|{request.last_user_text}|{request.temperature}"

    model = FunctionModel(echo)
    out = await model.chat(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}],
        temperature=0.2,
    )
    assert out.text == "be brief|x|0.2"
    assert model.name == "function:echo"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"messages": []}, "at least one message"),
        ({"messages": "hi", "temperature": 5}, "temperature"),
        ({"messages": "hi", "max_tokens": 0}, "max_tokens"),
        ({"messages": "hi", "tool_choice": "nope"}, "tool_choice 'nope'"),
        ({"messages": "hi", "tool_choice": "required"}, "at least one tool"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "message 0"),
        ({"messages": "hi", "tools": [{"name": "bad name!"}]}, "tool name"),
        ({"messages": "hi", "tools": [ToolSpec(name="a"), ToolSpec(name="a")]}, "unique"),
        ({"messages": "hi", "response_format": 42}, "response_format"),
    ],
)
async def test_bad_requests_raise_typed_errors_before_any_call(
    kwargs: dict[str, Any], match: str
) -> None:
    model = ScriptedModel(["never"])
    messages = kwargs.pop("messages")
    with pytest.raises(InvalidInputError, match=match):
        await model.chat(messages, **kwargs)
    assert model.calls == 0


async def test_streaming_delivers_deltas_and_measures_ttft_and_tpot() -> None:
    model = ScriptedModel(["one two three four five six"], stream_chunk=5)
    seen: list[str] = []
    out = await model.chat("go", on_token=seen.append)
    assert "".join(seen) == out.text and len(seen) == 6
    assert out.timing.ttft is not None and out.timing.ttft >= 0
    assert out.timing.tpot is not None and out.timing.latency >= out.timing.ttft


async def test_reported_usage_is_kept_and_priced() -> None:
    reply = ModelResponse(
        text="ok", model="openai:gpt-4o-mini", usage=Usage(input_tokens=1000, output_tokens=500)
    )
    out = await ScriptedModel([reply]).chat("x")
    assert out.usage == Usage(input_tokens=1000, output_tokens=500)
    assert out.cost == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)

    custom = ScriptedModel([reply])
    custom.prices = PriceTable({"openai:gpt-4o-mini": Price(1.0, 2.0)})
    assert (await custom.chat("x")).cost == pytest.approx(2000 / 1e6)


class S(TypedDict, total=False):
    q: str
    a: str
    ok: str


async def test_in_a_run_calls_are_journaled_and_replayed_on_resume() -> None:
    model = ScriptedModel(["first answer", "second answer"])

    async def ask(state: S) -> dict[str, Any]:
        out = await model.chat(state["q"])
        approval = interrupt({"draft": out.text})  # parks; the node re-runs on resume
        return {"a": out.text, "ok": approval}

    g = Graph(S, name="asker")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    wf = g.compile()
    async with Runtime(MemoryStore(), recover=False) as rt:
        parked = await rt.run(wf, {"q": "why?"})
        assert parked.status is RunStatus.ESCALATED
        done = await rt.resume(parked.run_id, "yes")
        assert done.status is RunStatus.COMPLETED  # type: ignore[union-attr]
        assert done.state == {"q": "why?", "a": "first answer", "ok": "yes"}  # type: ignore[union-attr]
        assert model.calls == 1, "the re-run got the journaled answer"
        events = [e async for e in rt.events(parked.run_id, follow=False)]
        calls = [e for e in events if e.type == "model_call"]
        assert len(calls) == 1 and calls[0].node == "ask"
        assert calls[0].data["model"] == "scripted:scripted"
        assert calls[0].data["output_tokens"] == 3
        assert any(e.type == "effect_replayed" for e in events)
        effects = await rt.store.list_effects(parked.run_id)
        assert [(e.kind, e.status) for e in effects] == [("model", "done")]


async def test_journal_false_calls_every_time() -> None:
    model = ScriptedModel(["a"], cycle=True)

    async def ask(state: S) -> dict[str, Any]:
        out = await model.chat("q", journal=False)
        interrupt("wait")
        return {"a": out.text}

    g = Graph(S, name="unjournaled")
    g.add_node("ask", ask).add_edge(START, "ask")
    async with Runtime(MemoryStore(), recover=False) as rt:
        parked = await rt.run(g.compile(), {})
        await rt.resume(parked.run_id, "go")
    assert model.calls == 2


async def test_a_failed_model_call_fails_the_node_and_keeps_the_error_in_the_journal() -> None:
    model = ScriptedModel([ModelTransientError("provider down", status=503)])

    async def ask(state: S) -> dict[str, Any]:
        return {"a": (await model.chat("q")).text}

    g = Graph(S, name="failing")
    g.add_node("ask", ask).add_edge(START, "ask")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(g.compile(), {})
        assert res.status is RunStatus.FAILED
        effects = await rt.store.list_effects(res.run_id)
        assert effects[0].status == "failed"
        assert effects[0].error is not None and "provider down" in effects[0].error["message"]


async def test_tool_contracts_are_offered_with_their_scope() -> None:
    from tether.tools import tool

    @tool(scope="write")
    def refund(order: str, cents: int) -> str:
        """Refund an order."""
        return "ok"

    model = ScriptedModel([tool_call("refund", {"order": "A1", "cents": 5})])
    out = await model.chat("refund A1", tools=[refund], tool_choice="refund")
    (spec,) = model.requests[0].tools
    assert (spec.name, spec.scope, spec.writes) == ("refund", "write", True)
    assert spec.parameters["required"] == ["order", "cents"]
    assert out.tool_calls[0].arguments == {"order": "A1", "cents": 5}


async def test_a_replayed_streamed_call_delivers_its_text_once() -> None:
    model = ScriptedModel(["streamed words here"], stream_chunk=3)
    seen: list[list[str]] = []

    async def ask(state: S) -> dict[str, Any]:
        tokens: list[str] = []
        out = await model.chat("q", on_token=tokens.append)
        seen.append(tokens)
        interrupt("ok?")
        return {"a": out.text}

    g = Graph(S, name="streamer")
    g.add_node("ask", ask).add_edge(START, "ask")
    async with Runtime(MemoryStore(), recover=False) as rt:
        parked = await rt.run(g.compile(), {})
        await rt.resume(parked.run_id, "yes")
    assert model.calls == 1
    assert len(seen[0]) == 7 and "".join(seen[0]) == "streamed words here"  # live: deltas
    assert seen[1] == ["streamed words here"]  # replayed: the recorded text, in one piece


async def test_a_model_consulted_inside_a_model_call_is_not_journaled_separately() -> None:
    judge = ScriptedModel(["yes", "yes"])

    async def answer(request: ModelRequest) -> str:
        verdict = await judge.chat(f"is '{request.last_user_text}' fine?")
        return f"{request.last_user_text}:{verdict.text}"

    outer = FunctionModel(answer, name="outer")
    later = ScriptedModel(["later answer"])

    async def ask(state: S) -> dict[str, Any]:
        first = await outer.chat("q")
        interrupt("go on?")
        second = await later.chat("next")  # its journal key must not be the judge's record
        return {"a": first.text, "ok": second.text}

    g = Graph(S, name="nested")
    g.add_node("ask", ask).add_edge(START, "ask")
    async with Runtime(MemoryStore(), recover=False) as rt:
        parked = await rt.run(g.compile(), {})
        done = await rt.resume(parked.run_id, "yes")
        assert done.state == {"a": "q:yes", "ok": "later answer"}  # type: ignore[union-attr]
        assert (outer.calls, judge.calls, later.calls) == (1, 1, 1)
        effects = await rt.store.list_effects(parked.run_id)
        assert len(effects) == 2, "the outer call and the later call; not the nested judge"
        events = [e.data async for e in rt.events(parked.run_id, follow=False)]
        calls = [e for e in events if "model" in e and "input_tokens" in e]
        assert sorted((c["model"], c.get("nested", False)) for c in calls) == [
            ("function:outer", False),
            ("scripted:scripted", False),
            ("scripted:scripted", True),
        ]


async def test_unjournaled_calls_in_a_run_still_report_their_usage() -> None:
    model = ScriptedModel(["a"])

    async def ask(state: S) -> dict[str, Any]:
        return {"a": (await model.chat("q", journal=False)).text}

    g = Graph(S, name="unjournaled_usage")
    g.add_node("ask", ask).add_edge(START, "ask")
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(g.compile(), {})
        events = [e async for e in rt.events(res.run_id, follow=False)]
        (call,) = [e.data for e in events if e.type == "model_call"]
        assert call["journaled"] is False and call["output_tokens"] == 1
        assert await rt.store.list_effects(res.run_id) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {
                "tools": [
                    {
                        "name": "t",
                        "parameters": {"type": "object", "properties": {"a": {"type": "nope"}}},
                    }
                ]
            },
            "properties/a/type",
        ),
        (
            {"response_format": {"type": "object", "required": "a"}},
            "response_format is not a valid JSON schema",
        ),
    ],
)
async def test_invalid_schemas_are_refused_before_any_call(
    kwargs: dict[str, Any], match: str
) -> None:
    model = ScriptedModel(["never"])
    with pytest.raises(InvalidInputError, match=match):
        await model.chat("hi", **kwargs)
    assert model.calls == 0
