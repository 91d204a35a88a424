"""Structured output: constrained request, parsing, validation, bounded repair loop."""

from __future__ import annotations

import re
from typing import Any, TypedDict

import pytest
from pydantic import BaseModel, Field

from tether import END, START, Graph, RunStatus, Runtime, interrupt
from tether.core.errors import InvalidInputError, ModelError, StructuredOutputError
from tether.llm import ModelResponse, ScriptedModel
from tether.llm.structured import (
    StructuredResult,
    extract_json,
    generate_structured,
    schema_errors,
)
from tether.store.memory import MemoryStore


class City(BaseModel):
    name: str
    population: int = Field(ge=0)


CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
    "required": ["name", "population"],
}


async def test_valid_first_time_sends_the_schema_as_response_format() -> None:
    model = ScriptedModel([{"name": "Oslo", "population": 700000}])
    result = await generate_structured(model, "Describe Oslo.", City)
    assert result.value == City(name="Oslo", population=700000)
    assert result.repairs == 0 and len(result.attempts) == 1 and result.attempts[0].ok
    fmt = model.requests[0].response_format
    assert fmt is not None and fmt.name == "City"
    assert fmt.json_schema == City.model_json_schema()


async def test_invalid_output_is_repaired_with_the_validation_error_fed_back() -> None:
    model = ScriptedModel(
        ['{"name": "Oslo", "population": "lots"}', '{"name": "Oslo", "population": 700000}']
    )
    result = await generate_structured(model, "Describe Oslo.", City, temperature=0)
    assert result.value.population == 700000
    assert result.repairs == 1
    assert not result.attempts[0].ok
    assert any("population" in e for e in result.attempts[0].errors)
    repair = model.requests[1]
    # the conversation carries the bad answer, then the errors quoted back
    assert [m.role for m in repair.messages] == ["user", "assistant", "user"]
    assert repair.messages[1].content == '{"name": "Oslo", "population": "lots"}'
    feedback = repair.messages[2].content
    assert "population" in feedback and "valid integer" in feedback
    assert "only the corrected JSON" in feedback
    assert repair.temperature == 0 and repair.response_format is not None


async def test_a_reply_cut_at_the_length_limit_is_echoed_in_part_only() -> None:
    """A small model repeating itself until its context is full: the repair shows the model
    the start of its reply and says it was cut off, not the whole reply again (which would
    leave the repair no room to answer)."""
    endless = '{"name": "Oslo", "notes": "' + "again " * 2000
    model = ScriptedModel(
        [ModelResponse(text=endless, finish_reason="length"), {"name": "Oslo", "population": 1}]
    )
    result = await generate_structured(model, "Describe Oslo.", City)
    assert result.value.population == 1
    echoed, feedback = model.requests[1].messages[1:]
    assert echoed.role == "assistant" and len(echoed.content) <= 401
    assert endless.startswith(echoed.content.rstrip("…"))
    assert "cut off at the length limit" in feedback.content


async def test_exhausted_repairs_raise_with_attempts_errors_and_last_output() -> None:
    model = ScriptedModel(["not json at all", '{"name": 3}', '{"name": "x", "population": -1}'])
    with pytest.raises(StructuredOutputError) as info:
        await generate_structured(model, "Describe Oslo.", City, max_repairs=2)
    err = info.value
    assert err.attempts == 3 and model.calls == 3
    assert err.last_output == '{"name": "x", "population": -1}'
    assert err.errors and "population" in err.errors[0]
    assert "greater than or equal to 0" in err.errors[0]
    assert "3 attempt(s)" in str(err) and err.model == "scripted:scripted"
    # the first repair quoted the parse error, the second the missing field
    assert "not valid JSON" in model.requests[1].messages[-1].content
    assert "population: Field required" in model.requests[2].messages[-1].content


async def test_max_repairs_zero_means_one_attempt() -> None:
    model = ScriptedModel(["{}", '{"name": "a", "population": 1}'])
    with pytest.raises(StructuredOutputError) as info:
        await generate_structured(model, "x", City, max_repairs=0)
    assert info.value.attempts == 1 and model.calls == 1


async def test_fenced_json_and_leading_prose_are_accepted() -> None:
    fenced = 'Sure! Here it is:\n```json\n{"name": "Bergen", "population": 285000}\n```\nBye.'
    prose = 'The answer is {"name": "Tromso", "population": 77000} as requested.'
    model = ScriptedModel([fenced, prose])
    first = await generate_structured(model, "x", City)
    second = await generate_structured(model, "x", City)
    assert first.value.name == "Bergen" and second.value.name == "Tromso"
    assert first.repairs == second.repairs == 0


async def test_dict_schema_validates_with_jsonschema() -> None:
    model = ScriptedModel(['{"name": "Oslo"}', '{"name": "Oslo", "population": 5}'])
    result: StructuredResult[Any] = await generate_structured(model, "x", CITY_SCHEMA)
    assert result.value == {"name": "Oslo", "population": 5}
    assert result.attempts[0].errors == ("(root): 'population' is a required property",)
    assert model.requests[0].response_format is not None
    assert model.requests[0].response_format.json_schema == CITY_SCHEMA


async def test_bad_arguments_are_refused_before_calling_the_model() -> None:
    model = ScriptedModel([])
    with pytest.raises(InvalidInputError, match="not a valid JSON schema"):
        await generate_structured(model, "x", {"type": "nonsense"})
    with pytest.raises(InvalidInputError, match="max_repairs"):
        await generate_structured(model, "x", City, max_repairs=-1)
    with pytest.raises(InvalidInputError, match="response_format"):
        await generate_structured(model, "x", City, response_format=City)
    assert model.calls == 0


async def test_model_errors_propagate_untouched() -> None:
    model = ScriptedModel([ModelError("boom")])
    with pytest.raises(ModelError, match="boom"):
        await generate_structured(model, "x", City)


async def test_an_empty_answer_is_invalid_and_repaired() -> None:
    model = ScriptedModel(
        [ModelResponse(text=""), ModelResponse(text='{"name": "a", "population": 2}')]
    )
    result = await generate_structured(model, "x", City)
    assert result.attempts[0].errors == ("the reply was empty; expected a JSON object",)


def test_extract_json_variants() -> None:
    assert extract_json(' {"a": 1} ') == {"a": 1}
    assert extract_json("```\n[1, 2]\n```") == [1, 2]
    assert extract_json('junk {broken then {"b": [1]} tail') == {"b": [1]}
    assert extract_json("list: [3, 4] done") == [3, 4]
    with pytest.raises(ValueError, match="not valid JSON"):
        extract_json("no json here")
    with pytest.raises(ValueError, match="empty"):
        extract_json("   ")


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ('{"score": NaN}', "NaN is not a JSON value"),
        ('Here: {"score": -Infinity}', "-Infinity is not a JSON value"),
        ('```json\n{"score": 1e999}\n```', "the number 1e999 is out of range"),
        ('{"score": ' + "7" * 5000 + "}", "has too many digits (5000)"),
        ("[" * 100_000, "nested too deeply"),
        ("so: " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_what_python_reads_but_json_is_not_is_refused(reply: str, said: str) -> None:
    """Before, NaN and Infinity (and 1e999, read as infinity) passed as floats into a
    validated value, and a deeply nested reply raised RecursionError out of
    generate_structured instead of being sent back for repair."""
    with pytest.raises(ValueError, match="the reply is not valid JSON: .*" + re.escape(said)):
        extract_json(reply)


class Score(BaseModel):
    score: float


async def test_a_reply_holding_nan_or_nested_too_deeply_is_repaired() -> None:
    model = ScriptedModel(['{"score": NaN}', "[" * 100_000, '{"score": 0.5}'])
    result = await generate_structured(model, "Score it.", Score)
    assert result.value == Score(score=0.5) and result.repairs == 2
    assert [a.errors for a in result.attempts[:2]] == [
        ("the reply is not valid JSON: NaN is not a JSON value; write a number or null",),
        ("the reply is not valid JSON: the JSON is nested too deeply",),
    ]
    assert "NaN is not a JSON value" in model.requests[1].messages[-1].content


def test_schema_errors_lists_every_problem_with_its_path() -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
        "required": ["items", "id"],
    }
    errors = schema_errors(schema, {"items": [1, "two", 3.5]})
    assert errors == [
        "(root): 'id' is a required property",
        "items.1: 'two' is not of type 'integer'",
        "items.2: 3.5 is not of type 'integer'",
    ]
    assert schema_errors(schema, {"items": [], "id": 1}) == []


class _S(TypedDict, total=False):
    q: str
    city: dict[str, Any]
    ok: Any


async def test_in_a_run_each_attempt_is_journaled_and_replayed_on_resume() -> None:
    model = ScriptedModel(['{"name": "Oslo"}', '{"name": "Oslo", "population": 7}'])

    async def ask(state: _S) -> dict[str, Any]:
        result = await generate_structured(model, state["q"], City)
        ok = interrupt({"draft": result.value.model_dump()})  # the node re-runs on resume
        return {"city": result.value.model_dump(), "ok": ok}

    g = Graph(_S, name="structured")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    async with Runtime(MemoryStore(), recover=False) as rt:
        parked = await rt.run(g.compile(), {"q": "Oslo?"})
        assert parked.status is RunStatus.ESCALATED
        done = await rt.resume(parked.run_id, "yes")
        assert done.status is RunStatus.COMPLETED
        assert done.state["city"] == {"name": "Oslo", "population": 7}
        assert model.calls == 2, "the re-run got both attempts from the journal"
        effects = await rt.store.list_effects(parked.run_id)
        assert [(e.kind, e.status) for e in effects] == [("model", "done"), ("model", "done")]


async def test_the_local_model_produces_a_valid_pydantic_object() -> None:
    from tether.llm.providers.local import LocalModel

    class Person(BaseModel):
        name: str
        age: int = Field(ge=0, le=150)

    result = await generate_structured(
        LocalModel(), "Invent a person with a name and an age.", Person, max_tokens=48
    )
    assert isinstance(result.value, Person) and result.value.name
    assert result.response.model == "local:smollm2"
    assert result.response.metadata["constrained"] == "schema"
    assert all(a.response.usage.output_tokens > 0 for a in result.attempts)
