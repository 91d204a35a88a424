"""ReWOO: plan with placeholders, parallel waves, substitution, the solver, plan repair, and
the model calls and tokens it saves against ReAct on the same task."""

from __future__ import annotations

import asyncio

import jsonschema
import pytest

from tests.agents.tools_fixture import executor
from tether import EscalationSignal, RunStatus, Runtime
from tether.agents import (
    ReactOptions,
    RewooOptions,
    react_agent,
    rewoo_agent,
    savings,
)
from tether.agents.rewoo_plan import plan_schema
from tether.core.errors import RunFailedError, StructuredOutputError
from tether.llm import ScriptedModel, tool_call
from tether.store.memory import MemoryStore
from tether.tools import ToolExecutor, tool

TASK = "How many people live in Paris, Lyon and Marseille together?"
PLAN = {
    "steps": [
        {"id": "#E1", "tool": "population", "args": {"city": "Paris"}},
        {"id": "#E2", "tool": "population", "args": {"city": "Lyon"}},
        {"id": "#E3", "tool": "population", "args": {"city": "Marseille"}},
        {"id": "#E4", "tool": "add", "args": {"a": "#E1", "b": "#E2"}},
        {"id": "#E5", "tool": "add", "args": {"a": "#E4", "b": "#E3"}},
    ]
}
TOTAL = 2_100_000 + 520_000 + 870_000


def rewoo_models() -> tuple[ScriptedModel, ScriptedModel]:
    return ScriptedModel([PLAN], name="planner"), ScriptedModel([f"{TOTAL}"], name="solver")


def react_model() -> ScriptedModel:
    return ScriptedModel(
        [
            tool_call("population", {"city": "Paris"}),
            tool_call("population", {"city": "Lyon"}),
            tool_call("population", {"city": "Marseille"}),
            tool_call("add", {"a": 2_100_000, "b": 520_000}),
            tool_call("add", {"a": 2_620_000, "b": 870_000}),
            f"{TOTAL}",
        ]
    )


async def test_plan_waves_substitution_and_solver() -> None:
    planner, solver = rewoo_models()
    final = await rewoo_agent(
        RewooOptions(planner=planner, solver=solver, tools=executor())
    ).ainvoke({"task": TASK})
    assert final["evidence"] == {
        "#E1": 2_100_000,
        "#E2": 520_000,
        "#E3": 870_000,
        "#E4": 2_620_000,
        "#E5": TOTAL,
    }
    assert final["waves"] == 3  # E1-E3 together, then E4, then E5
    assert final["answer"] == str(TOTAL) and final["model_calls"] == 2
    solver_prompt = solver.requests[0].messages[-1].content
    assert "#E5 = add" in solver_prompt and str(TOTAL) in solver_prompt


async def test_independent_steps_run_concurrently() -> None:
    barrier = asyncio.Barrier(3)

    @tool(scope="read", idempotent=True)
    async def lookup(city: str) -> str:
        """Waits until all three lookups are in flight: only concurrent calls get through."""
        await asyncio.wait_for(barrier.wait(), 60)
        return city.upper()

    plan = {
        "steps": [
            {"id": f"#E{i}", "tool": "lookup", "args": {"city": c}}
            for i, c in enumerate(["a", "b", "c"], 1)
        ]
    }
    final = await rewoo_agent(
        RewooOptions(
            planner=ScriptedModel([plan]),
            solver=ScriptedModel(["ABC"]),
            tools=ToolExecutor([lookup]),
        )
    ).ainvoke({"task": "upper-case a, b and c"})
    assert final["evidence"] == {"#E1": "A", "#E2": "B", "#E3": "C"} and final["waves"] == 1


async def test_rewoo_saves_model_calls_and_tokens_against_react() -> None:
    planner, solver = rewoo_models()
    rewoo = await rewoo_agent(
        RewooOptions(planner=planner, solver=solver, tools=executor())
    ).ainvoke({"task": TASK})
    react = await react_agent(ReactOptions(model=react_model(), tools=executor())).ainvoke(
        {"task": TASK}
    )
    assert rewoo["answer"] == react["answer"] == str(TOTAL)
    assert rewoo["tool_calls"] == react["tool_calls"] == 5
    saved = savings(rewoo, react)
    assert (saved.baseline_calls, saved.calls, saved.model_calls) == (6, 2, 4)
    assert saved.tokens > 0 and saved.tokens == react["tokens"] - rewoo["tokens"]
    assert "saved" in saved.table()


async def test_a_plan_that_breaks_the_rules_is_repaired_once() -> None:
    bad = {
        "steps": [
            {"id": "#E1", "tool": "add", "args": {"a": "#E2", "b": 1}},
            {"id": "#E2", "tool": "add", "args": {"a": 1, "b": 2}},
        ]
    }
    good = {"steps": [{"id": "#E1", "tool": "add", "args": {"a": 1, "b": 1}}]}
    planner = ScriptedModel([bad, good])
    final = await rewoo_agent(
        RewooOptions(planner=planner, solver=ScriptedModel(["2"]), tools=executor())
    ).ainvoke({"task": "1+1"})
    assert final["evidence"] == {"#E1": 2}
    fix = planner.requests[1].messages[-1].content
    assert "uses #E2 before it is produced" in fix


async def test_the_plan_schema_names_the_tools_and_bounds_the_steps() -> None:
    """The planner is asked for a schema with the tools as an enum and at most ``max_steps``
    steps (a constrained decoder enforces both); an unknown tool is sent back for repair."""
    bad = {"steps": [{"id": "#E1", "tool": "nope", "args": {}}]}
    good = {"steps": [{"id": "#E1", "tool": "add", "args": {"a": 1, "b": 1}}]}
    planner = ScriptedModel([bad, good])
    final = await rewoo_agent(
        RewooOptions(planner=planner, solver=ScriptedModel(["2"]), tools=executor(), max_steps=3)
    ).ainvoke({"task": "1+1"})
    assert final["evidence"] == {"#E1": 2}
    fmt = planner.requests[0].response_format
    assert fmt is not None
    steps = fmt.json_schema["properties"]["steps"]
    assert steps["maxItems"] == 3
    alternatives = steps["items"]["anyOf"]
    assert [a["properties"]["tool"]["enum"] for a in alternatives] == [["add"], ["population"]]
    assert alternatives[0]["properties"]["id"]["enum"] == ["#E1", "#E2", "#E3"]
    add_args = alternatives[0]["properties"]["args"]
    assert add_args["required"] == ["a", "b"]  # the tool's own arguments, each may be "#E.."
    assert add_args["properties"]["a"]["anyOf"][1]["type"] == "string"
    assert "steps.0" in planner.requests[1].messages[-1].content


def test_placeholders_may_stand_anywhere_in_the_arguments() -> None:
    """A list of placeholders where the tool takes a list of numbers, a placeholder in a field
    of an object: the schema takes them (substitution replaces them before the call)."""
    inputs = {
        "total": {
            "type": "object",
            "properties": {
                "values": {"type": "array", "items": {"type": "number"}},
                "where": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
            "required": ["values"],
        }
    }
    schema = plan_schema(inputs, 4)
    ok = {"id": "#E3", "tool": "total", "args": {"values": ["#E1", 2], "where": {"city": "#E2"}}}
    jsonschema.validate({"steps": [ok]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"steps": [{**ok, "args": {"where": {}}}]}, schema)  # values missing


async def test_a_plan_still_broken_after_repairs_fails_with_a_typed_error() -> None:
    bad = {"steps": [{"id": "#E1", "tool": "add", "args": {"a": "#E1", "b": 1}}]}
    agent = rewoo_agent(
        RewooOptions(
            planner=ScriptedModel([bad], cycle=True), solver=ScriptedModel([]), tools=executor()
        )
    )
    with pytest.raises(RunFailedError, match="no runnable plan in 2 attempt") as info:
        await agent.ainvoke({"task": "x"})
    assert isinstance(info.value.__cause__, StructuredOutputError)
    assert "#E1 uses #E1 before it is produced" in str(info.value.__cause__)


async def test_max_repairs_bounds_every_repair_round_together() -> None:
    """Parse problems and rule problems share the ``max_repairs`` rounds: with 1, the planner
    is asked twice at most. Before, each rule repair had its own parse repairs: not JSON, a
    forward reference, not JSON again, then a good plan took 4 planner calls."""
    bad = {
        "steps": [
            {"id": "#E1", "tool": "add", "args": {"a": "#E2", "b": 1}},
            {"id": "#E2", "tool": "add", "args": {"a": 1, "b": 2}},
        ]
    }
    good = {"steps": [{"id": "#E1", "tool": "add", "args": {"a": 1, "b": 1}}]}
    planner = ScriptedModel(["not json", bad, "still not json", good])
    agent = rewoo_agent(
        RewooOptions(planner=planner, solver=ScriptedModel(["2"]), tools=executor(), max_repairs=1)
    )
    with pytest.raises(RunFailedError, match="no runnable plan in 2 attempt"):
        await agent.ainvoke({"task": "1+1"})
    assert planner.calls == 2
    planner = ScriptedModel(["not json", bad, good])  # two rounds: a parse, then a rule repair
    final = await rewoo_agent(
        RewooOptions(planner=planner, solver=ScriptedModel(["2"]), tools=executor(), max_repairs=2)
    ).ainvoke({"task": "1+1"})
    assert final["evidence"] == {"#E1": 2} and planner.calls == 3


async def test_a_failed_tool_becomes_evidence_for_the_solver() -> None:
    plan = {"steps": [{"id": "#E1", "tool": "population", "args": {"city": "Atlantis"}}]}
    solver = ScriptedModel(["unknown"])
    final = await rewoo_agent(
        RewooOptions(planner=ScriptedModel([plan]), solver=solver, tools=executor())
    ).ainvoke({"task": "population of Atlantis"})
    assert final["evidence"]["#E1"].startswith("error (")
    assert "KeyError" in solver.requests[0].messages[-1].content


def test_a_step_id_that_is_not_a_placeholder_is_a_plan_problem() -> None:
    from tether.agents import Plan, PlanStep
    from tether.agents.rewoo_plan import plan_problems

    plan = Plan(steps=[PlanStep(id="step1", tool="add", args={"a": 1, "b": 2})])
    assert plan_problems(plan, ["add"]) == ["step id 'step1' is not of the form #E1, #E2, ..."]
    assert "pattern" not in str(Plan.model_json_schema())  # the local model's grammar can't


async def test_a_call_that_parks_the_run_lets_its_wave_finish_first() -> None:
    """One call of a wave escalating (a guard, an approval) parked the run at once while the
    other calls went on running: a charge landed after the run said it was waiting, and a
    human cancelling the parked run could not know it had been made."""
    charged: list[int] = []
    looks: list[int] = []

    @tool(scope="write")
    async def charge(order: int) -> str:
        """Charge an order."""
        await asyncio.sleep(0.2)
        charged.append(order)
        return f"charged {order}"

    @tool(scope="read", idempotent=True)
    def check(order: int) -> str:
        """Check an order."""
        looks.append(order)
        if len(looks) == 1:
            raise EscalationSignal("needs a look", kind="guard")
        return "ok"

    plan = {
        "steps": [
            {"id": "#E1", "tool": "check", "args": {"order": 1}},
            {"id": "#E2", "tool": "charge", "args": {"order": 1234}},
        ]
    }
    wf = rewoo_agent(
        RewooOptions(
            planner=ScriptedModel([plan]),
            solver=ScriptedModel(["done"]),
            tools=ToolExecutor([charge, check]),
        )
    )
    async with Runtime(MemoryStore(), workflows=[wf], recover=False) as rt:
        parked = await rt.run(wf, {"task": "charge 1234"})
        assert parked.status is RunStatus.ESCALATED
        assert charged == [1234]  # done before the run parked, and journaled
        done = await rt.resume(parked.run_id)
    assert done.status is RunStatus.COMPLETED and charged == [1234]  # not charged again
    assert done.state["evidence"] == {"#E1": "ok", "#E2": "charged 1234"}
