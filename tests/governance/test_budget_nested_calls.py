"""A model call made on a run's behalf outside its journal is bounded by the run's budget.

Before, a call nested in another model call (a judge a cascade or a FunctionModel consults, a
structured-output repair asked from inside one) and a ``journal=False`` call (a guard model's)
went around governance: the budget neither reserved for them before they ran nor charged them
after, so a run could spend any number of them past its limits, all at once. Now each reserves
its projection before it runs (a trip parks the run as for a journaled call) and is charged
what it spent; the soft-limit note stays for the agent's own prompts."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from tether import END, START, Graph, RunStatus, Runtime
from tether.governance import Budget, Governance
from tether.llm import FunctionModel, ModelRequest, ModelResponse, Usage


class S(TypedDict, total=False):
    text: str


def _judge(started: list[int], admitted: int, prompts: list[ModelRequest]) -> FunctionModel:
    """A judge whose calls each wait until ``admitted`` of them are in flight at once."""
    enough = asyncio.Event()

    async def judge(request: ModelRequest) -> ModelResponse:
        prompts.append(request)
        started.append(1)
        if len(started) >= admitted:
            enough.set()
        await enough.wait()
        return ModelResponse(text="yes", usage=Usage(input_tokens=10, output_tokens=2))

    return FunctionModel(judge, name="judge")


async def _run(outer: FunctionModel, budget: Budget, journal: bool = True) -> tuple[Any, Any]:
    async def agent(state: S) -> dict[str, Any]:
        said = await outer.chat("is the refund fine?", max_tokens=10, journal=journal)
        return {"text": said.text}

    g = Graph(S, name="nested_calls")
    g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
    async with Runtime("memory://") as rt:
        res = await rt.run(g.compile(governance=Governance(budget=budget)), {})
        ledger = await rt.store.get_ledger(f"run:{res.run_id}")  # type: ignore[attr-defined]
    return res, ledger


async def test_concurrent_nested_calls_reserve_before_they_run_and_stop_at_the_limit() -> None:
    """Five judges asked at once from inside the outer call; the budget admits three (four
    model calls with the outer one): the other two trip before they reach the model."""
    started: list[int] = []
    judge = _judge(started, 3, [])

    async def outer(request: ModelRequest) -> ModelResponse:
        asks = [judge.chat(f"check {i}", max_tokens=2) for i in range(5)]
        results = await asyncio.gather(*asks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return ModelResponse(text="ok", usage=Usage(input_tokens=5, output_tokens=1))

    res, ledger = await _run(FunctionModel(outer, name="outer"), Budget(model_calls=4))
    assert res.status is RunStatus.ESCALATED, res.error  # before: COMPLETED, 5 judges paid
    assert res.escalation["details"]["dimension"] == "model_calls"
    assert len(started) == 3 and judge.calls == 3
    assert ledger.used["model_calls"] == 4
    assert ledger.used["input_tokens"] >= 3 * 10 and ledger.used["output_tokens"] >= 3 * 2
    assert sum(ledger.reserved.values()) == 0


async def test_a_nested_call_is_charged_what_it_spent() -> None:
    started: list[int] = []
    judge = _judge(started, 1, [])

    async def outer(request: ModelRequest) -> ModelResponse:
        verdict = await judge.chat("check", max_tokens=2)
        return ModelResponse(text=verdict.text, usage=Usage(input_tokens=5, output_tokens=1))

    res, ledger = await _run(FunctionModel(outer, name="outer"), Budget(tokens=10_000))
    assert res.status is RunStatus.COMPLETED, res.error
    assert ledger.used["model_calls"] == 2  # before: 1, the judge's call went uncounted
    assert (ledger.used["input_tokens"], ledger.used["output_tokens"]) == (5 + 10, 1 + 2)
    assert sum(ledger.reserved.values()) == 0


async def test_an_unjournaled_call_is_bounded_by_the_budget() -> None:
    started: list[int] = []
    model = _judge(started, 1, [])
    res, ledger = await _run(model, Budget(model_calls=0), journal=False)
    assert res.status is RunStatus.ESCALATED, res.error  # before: COMPLETED
    assert started == []  # refused before it ran
    assert ledger.used.get("model_calls", 0) == 0


async def test_the_soft_note_waits_for_the_agents_own_prompt() -> None:
    """The second judge, asked inside the agent's second call, is the first call made once
    usage passed the soft limit; it is not the agent: the note goes into the agent's next
    prompt, not into the judge's."""
    prompts: list[ModelRequest] = []
    judge = _judge([], 1, prompts)
    asked: list[ModelRequest] = []

    async def outer(request: ModelRequest) -> ModelResponse:
        asked.append(request)
        if len(asked) == 2:
            await judge.chat("check one", max_tokens=2)
            await judge.chat("check two", max_tokens=2)
        return ModelResponse(text="ok", usage=Usage(input_tokens=5, output_tokens=1))

    model = FunctionModel(outer, name="outer")

    async def agent(state: S) -> dict[str, Any]:
        for _ in range(3):
            await model.chat("next", max_tokens=10)
        return {"text": "done"}

    g = Graph(S, name="soft_nested")
    g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
    budget = Budget(model_calls=10, soft=0.2)  # the note is due once 2 calls are counted
    async with Runtime("memory://") as rt:
        res = await rt.run(g.compile(governance=Governance(budget=budget)), {})
    assert res.status is RunStatus.COMPLETED, res.error
    assert len(prompts) == 2 and len(asked) == 3
    assert not any("Budget notice" in m.content for p in prompts for m in p.messages)
    assert any("Budget notice" in m.content for m in asked[2].messages)


async def test_a_nested_call_a_policy_escalates_is_refused_not_parked() -> None:
    """A model rule that asks for an approval cannot gate a call made inside another model
    call (no journal key to bind an approval to: every resume would ask again): that call is
    refused with PolicyViolationError saying why, nothing is asked of a person, and a `deny`
    rule refuses such a call as it refuses a journaled one."""
    from tether.core.errors import PolicyViolationError
    from tether.governance import PolicySet, Rule

    judge = FunctionModel(lambda request: "yes", name="judge")
    seen: list[str] = []

    async def outer(request: ModelRequest) -> ModelResponse:
        try:
            await judge.chat("is it fine?")
        except PolicyViolationError as exc:
            seen.append(str(exc))
        return ModelResponse(text="done")

    async def agent(state: S) -> dict[str, Any]:
        said = await FunctionModel(outer, name="outer").chat("go")
        return {"text": said.text}

    for action in ("escalate", "deny"):
        seen.clear()
        rule = Rule("judge_rule", action, kind="model", tool="*judge")
        g = Graph(S, name=f"nested_{action}")
        g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
        wf = g.compile(governance=Governance(policies=PolicySet([rule])))
        async with Runtime("memory://") as rt:
            res = await rt.run(wf, {})
            assert res.status is RunStatus.COMPLETED, res.error
            assert await rt.store.list_approvals(run_id=res.run_id) == []  # type: ignore[attr-defined]
        (message,) = seen
        assert "judge_rule" in message
        if action == "escalate":
            assert "outside the run's journal" in message and "Gate the outer call" in message
