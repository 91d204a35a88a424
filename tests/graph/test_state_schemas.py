"""State classes of every kind keep their defaults and required fields; defaults are never shared
between runs; NaN and infinity are refused, naming the field."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any, NotRequired, Required, TypedDict

import pytest
from pydantic import BaseModel, field_validator

from tether import (
    END,
    START,
    Graph,
    InvalidInputError,
    RunStatus,
    Runtime,
    append,
    interrupt,
)


def _one_node(state: type[Any], node: Any, name: str) -> Any:
    g = Graph(state, name=name)
    g.add_node("work", node).add_edge(START, "work").add_edge("work", END)
    return g.compile()


def _report(s: Any) -> dict[str, Any]:
    s["reports"].append("finding")  # in place, as careless node code does
    return {"count": s["count"] + 1}


# -- mutable defaults (a plain class) ------------------------------------------------------------
class Plain:
    reports: list[str] = []
    count: int = 0


async def test_a_mutable_class_default_is_not_shared_between_runs(rt: Runtime) -> None:
    wf = _one_node(Plain, _report, "plain")
    first = await rt.run(wf, {})
    second = await rt.run(wf, {})
    assert first.status is second.status is RunStatus.COMPLETED
    assert first.state == {"reports": ["finding"], "count": 1}
    assert second.state == {"reports": ["finding"], "count": 1}  # not run 1's finding too
    assert Plain.reports == []


async def test_input_is_copied_so_a_node_cannot_reach_the_callers_objects(rt: Runtime) -> None:
    wf = _one_node(Plain, _report, "plain")
    given: list[str] = ["mine"]
    res = await rt.run(wf, {"reports": given})
    assert res.state["reports"] == ["mine", "finding"]
    assert given == ["mine"]


# -- pydantic ------------------------------------------------------------------------------------
class Model(BaseModel):
    topic: str
    reports: list[str] = []
    count: int = 0
    notes: Annotated[list[str], append] = []

    @field_validator("topic")
    @classmethod
    def _tidy(cls, v: str) -> str:
        return v.strip().lower()


def _seen(s: Any) -> dict[str, Any]:
    return {"notes": [f"{s['topic']}:{len(s['reports'])}:{s['count']}"], "count": s["count"] + 1}


async def test_a_pydantic_state_keeps_defaults_and_runs_its_validators(rt: Runtime) -> None:
    wf = _one_node(Model, _seen, "model")
    res = await rt.run(wf, {"topic": "  Tides "})
    assert res.status is RunStatus.COMPLETED, res.error
    assert res.state == {"topic": "tides", "reports": [], "count": 1, "notes": ["tides:0:0"]}
    assert wf.schema.fields["notes"].reducer is append


async def test_a_pydantic_model_with_in_place_mutation_does_not_leak(rt: Runtime) -> None:
    wf = _one_node(Model, _report, "model")
    await rt.run(wf, {"topic": "a"})
    res = await rt.run(wf, {"topic": "b"})
    assert res.state["reports"] == ["finding"]


async def test_a_pydantic_state_refuses_input_missing_a_required_field(rt: Runtime) -> None:
    wf = _one_node(Model, _seen, "model")
    with pytest.raises(InvalidInputError, match=r"missing required state field\(s\) \['topic'\]"):
        await rt.start(wf, {"count": 2})
    with pytest.raises(InvalidInputError, match="count"):
        await rt.start(wf, {"topic": "x", "count": "many"})
    assert await rt.list_runs() == []  # refused before anything was stored


# -- dataclasses ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    topic: str
    reports: list[str] = dataclasses.field(default_factory=list)
    count: int = 0


async def test_a_dataclass_state_keeps_defaults_and_factories(rt: Runtime) -> None:
    wf = _one_node(Data, _report, "data")
    first = await rt.run(wf, {"topic": "a"})
    second = await rt.run(wf, {"topic": "b"})
    assert first.status is RunStatus.COMPLETED, first.error
    assert first.state == {"topic": "a", "reports": ["finding"], "count": 1}
    assert second.state == {"topic": "b", "reports": ["finding"], "count": 1}
    with pytest.raises(InvalidInputError, match=r"missing required state field\(s\) \['topic'\]"):
        await rt.start(wf, {})
    assert len(await rt.list_runs()) == 2  # the refused one was never stored


# -- TypedDict -----------------------------------------------------------------------------------
class Loose(TypedDict, total=False):
    topic: Required[str]
    reports: Annotated[list[str], append]
    count: int


class Strict(TypedDict):
    topic: str
    hint: NotRequired[str]
    reports: Required[Annotated[list[str], append]]


async def test_typeddict_required_keys_must_be_in_the_input(rt: Runtime) -> None:
    wf = _one_node(Loose, lambda s: {"reports": s["topic"]}, "loose")
    with pytest.raises(InvalidInputError, match=r"\['topic'\] of Loose"):
        await rt.start(wf, {"count": 1})
    res = await rt.run(wf, {"topic": "t"})
    assert res.state == {"topic": "t", "reports": ["t"]}

    strict = _one_node(Strict, lambda s: {"reports": "r"}, "strict")
    assert strict.schema.fields["reports"].reducer is append  # Required[Annotated[...]] unwrapped
    assert strict.schema.fields["reports"].type == list[str]
    with pytest.raises(InvalidInputError, match=r"\['reports'\] of Strict"):
        await rt.start(strict, {"topic": "t"})
    # a plain key of a total TypedDict may be written later by a node: not required up front
    res = await rt.run(strict, {"reports": []})
    assert res.state == {"reports": ["r"]}


# -- NaN and infinity ----------------------------------------------------------------------------
class Scores(TypedDict, total=False):
    score: float
    history: list[dict[str, float]]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_nan_or_infinity_written_by_a_node_fails_the_step_naming_the_field(
    rt: Runtime, bad: float
) -> None:
    wf = _one_node(Scores, lambda s: {"history": [{"a": 1.0}, {"b": bad}]}, "scores")
    res = await rt.run(wf, {"score": 1.0})
    assert res.status is RunStatus.FAILED
    assert res.error is not None and res.error["type"] == "InvalidUpdateError"
    assert "'history'" in res.error["message"] and "history[1]['b']" in res.error["message"]
    assert "NaN or infinity" in res.error["message"]
    assert (await rt.get_state(res.run_id)) == {"score": 1.0}  # nothing of it was stored


async def test_nan_in_the_input_is_refused_before_the_run_starts(rt: Runtime) -> None:
    wf = _one_node(Scores, lambda s: None, "scores")
    with pytest.raises(InvalidInputError, match=r"'score'=nan.*NaN or infinity"):
        await rt.start(wf, {"score": math.nan})
    untyped = _one_node(Plain, lambda s: None, "plain")  # no type check on Plain.reports items
    with pytest.raises(InvalidInputError, match=r"reports\[0\]"):
        await rt.start(untyped, {"reports": [math.inf]})
    assert await rt.list_runs() == []


# -- what JSON (or orjson) cannot hold: lone surrogates, integers beyond 64 bits ---------------------
class Notes(TypedDict, total=False):
    text: str
    tags: dict[str, int]
    count: int


SURROGATE_TEXT = b"caf\xe9".decode("utf-8", "surrogateescape")  # a Latin-1 byte read as UTF-8


async def test_a_lone_surrogate_written_by_a_node_fails_the_step_naming_the_field(
    rt: Runtime,
) -> None:
    """Before: the step's commit raised a bare TypeError out of ``run()``, the run FAILED with no
    node named; now it is the node's invalid update, like a NaN."""
    wf = _one_node(Notes, lambda s: {"text": "read " + SURROGATE_TEXT}, "notes_node")
    res = await rt.run(wf, {"text": "start"})
    assert res.status is RunStatus.FAILED
    assert res.error is not None and res.error["type"] == "InvalidUpdateError"
    assert "'text'" in res.error["message"] and "not valid UTF-8" in res.error["message"]
    assert "errors='replace'" in res.error["message"]
    assert (await rt.get_state(res.run_id)) == {"text": "start"}  # nothing of it was stored
    failed = [e for e in await rt.store.list_events(res.run_id) if e.type == "node_failed"]
    assert [e.node for e in failed] == ["work"]  # the node of _one_node


async def test_a_lone_surrogate_or_a_huge_integer_in_the_input_is_refused_up_front(
    rt: Runtime,
) -> None:
    wf = _one_node(Notes, lambda s: None, "notes_input")
    with pytest.raises(InvalidInputError, match=r"'text'=.*not valid UTF-8"):
        await rt.start(wf, {"text": "\ud800"})
    with pytest.raises(InvalidInputError, match=r"not valid UTF-8.*at tags\["):
        await rt.start(wf, {"tags": {SURROGATE_TEXT: 1}})  # in a key
    with pytest.raises(InvalidInputError, match=r"'count'=.*beyond 64 bits"):
        await rt.start(wf, {"count": 2**64})
    assert await rt.list_runs() == []
    done = await rt.run(wf, {"text": "naïve ☃", "count": 2**64 - 1})  # both storable
    assert done.status is RunStatus.COMPLETED and done.state["count"] == 2**64 - 1


async def test_run_arguments_tether_cannot_store_are_refused_on_every_backend(
    any_rt: Runtime,
) -> None:
    rt = any_rt
    """Before: SQLite and PostgreSQL raised the driver's UnicodeEncodeError (or orjson's
    TypeError) from ``start``, the memory store took them; now all refuse them alike."""
    wf = _one_node(Notes, lambda s: {"text": "ok"}, "notes_args")
    for kwargs, name in [
        ({"metadata": {"source": SURROGATE_TEXT}}, "metadata"),
        ({"metadata": {"n": 2**70}}, "metadata"),
        ({"idempotency_key": "\udcff"}, "idempotency_key"),
        ({"thread_id": "\udcff"}, "thread_id"),
        ({"queue": "\udcff"}, "queue"),
        ({"run_id": "\udcff"}, "run_id"),
    ]:
        with pytest.raises(InvalidInputError, match=rf"^{name}=.*holds"):
            await rt.start(wf, {"text": "x"}, **kwargs)
    assert await rt.list_runs() == []
    parked = _one_node(Notes, _ask, "notes_ask")
    res = await rt.run(parked, {"text": "x"})
    assert res.status is RunStatus.ESCALATED
    with pytest.raises(InvalidInputError, match=r"^value=.*not valid UTF-8"):
        await rt.resume(res.run_id, "yes " + SURROGATE_TEXT)
    with pytest.raises(InvalidInputError, match=r"^reason=.*not valid UTF-8"):
        await rt.cancel(res.run_id, reason=SURROGATE_TEXT)
    assert (await rt.get_run(res.run_id)).status is RunStatus.ESCALATED  # untouched
    done = await rt.resume(res.run_id, "yes ☃")
    assert done.status is RunStatus.COMPLETED and done.state["text"] == "yes ☃"


def _ask(s: Any) -> dict[str, Any]:
    return {"text": interrupt("what now?")}
