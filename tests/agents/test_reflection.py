"""Reflection: a deterministic validator or a judge model; failures re-enter planning with the
errors as context; bounded rounds; lifecycle phases."""

from __future__ import annotations

import pytest

from tether import Runtime
from tether.agents import ReflectionOptions, reflection_agent
from tether.core.errors import ConfigurationError
from tether.llm import ScriptedModel
from tether.store.memory import MemoryStore


def ends_with_period(output: str) -> list[str]:
    return [] if output.endswith(".") else ["end the sentence with a full stop"]


async def test_failure_re_enters_planning_with_the_error_as_context() -> None:
    model = ScriptedModel(["tether is durable", "tether is durable."])
    final = await reflection_agent(
        ReflectionOptions(generator=model, validator=ends_with_period)
    ).ainvoke({"task": "One sentence about tether."})
    assert final["passed"] is True and final["rounds"] == 2
    assert final["output"] == "tether is durable."
    second = model.requests[1].messages[-1].content
    assert "tether is durable" in second and "end the sentence with a full stop" in second
    assert [h["errors"] for h in final["history"]] == [["end the sentence with a full stop"], []]


async def test_rounds_are_bounded() -> None:
    model = ScriptedModel(["no period"], cycle=True)
    final = await reflection_agent(
        ReflectionOptions(generator=model, validator=ends_with_period, max_rounds=3)
    ).ainvoke({"task": "x"})
    assert final["passed"] is False and final["rounds"] == 3 and model.calls == 3
    assert final["errors"] == ["end the sentence with a full stop"]


async def test_a_judge_model_checks_after_the_validator() -> None:
    generator = ScriptedModel(["draft one.", "draft two."])
    judge = ScriptedModel([{"ok": False, "errors": ["mention durability"]}, {"ok": True}])
    final = await reflection_agent(
        ReflectionOptions(
            generator=generator,
            validator=ends_with_period,
            judge=judge,
            criteria="Mention durability.",
        )
    ).ainvoke({"task": "Describe tether."})
    assert final["passed"] and final["output"] == "draft two." and judge.calls == 2
    assert "mention durability" in generator.requests[1].messages[-1].content
    assert "Mention durability." in judge.requests[0].messages[-1].content
    assert final["model_calls"] == 4


async def test_the_validator_step_runs_in_the_validating_phase() -> None:
    model = ScriptedModel(["ok."])
    wf = reflection_agent(
        ReflectionOptions(generator=model, validator=ends_with_period), name="reflect_phases"
    )
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"task": "x"})
        path = [t.dst.value for t in await rt.store.list_transitions(res.run_id)]
    assert "VALIDATING" in path and path[-1] == "COMPLETED"


def test_a_check_is_required() -> None:
    with pytest.raises(ConfigurationError, match="validator"):
        ReflectionOptions(generator=ScriptedModel([]))
