"""The drift monitor: a run whose output strays from the goal (or whose plan strays from the
last one) is flagged, a faithful one is not (real MiniLM); the graph route sends a drifting
answer back for a correction (a fake embedder, for exact similarities)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.core.errors import ConfigurationError
from tether.evaluation import DriftMonitor, add_drift_route, check_drift, drift_flags, record_plan
from tether.llm.fakes import ScriptedModel
from tether.store.memory import MemoryStore

QUESTION = "How do I reset my password?"
FAITHFUL = (
    "To reset your password, click 'Forgot password' on the login page and follow the link "
    "we email you."
)
OFF_TOPIC = "Our quarterly revenue grew 12% on strong sales in Europe."
PLAN = "Plan: look up the password reset steps, then explain them to the user"
PLAN_AGAIN = "Plan: look up how to reset a password, then explain the steps to the user"
PLAN_ASTRAY = "Plan: write a poem about cats"


class Helpdesk(TypedDict, total=False):
    question: str
    answer: str
    drift: dict[str, Any]


def helpdesk(answers: Sequence[str], plans: Sequence[str]) -> Any:
    model = ScriptedModel(list(answers), cycle=True)

    async def answer(state: Helpdesk, ctx: RunContext) -> dict[str, Any]:
        for text in plans:
            record_plan(["lookup", "explain"], text=text)
        said = await model.chat(state["question"])
        return {"answer": said.text}

    g = Graph(Helpdesk, name="helpdesk")
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g.compile()


async def test_real_minilm_flags_the_divergent_run_not_the_faithful_one() -> None:
    store = MemoryStore()
    monitor = DriftMonitor()  # all-MiniLM-L6-v2, threshold 0.7
    async with Runtime(store) as rt:
        good = await rt.run(helpdesk([FAITHFUL], [PLAN, PLAN_AGAIN]), {"question": QUESTION})
        bad = await rt.run(helpdesk([OFF_TOPIC], [PLAN, PLAN_ASTRAY]), {"question": QUESTION})
    ok = await check_drift(store, good.run_id, monitor=monitor)
    assert not ok.drifted and ok.flags == []
    assert ok.goal_output is not None and ok.goal_output.similarity >= 0.7
    assert [c.similarity >= 0.7 for c in ok.plans] == [True]

    off = await check_drift(store, bad.run_id, monitor=monitor)
    assert off.drifted
    assert off.goal_output is not None and off.goal_output.similarity < 0.3
    assert [(f.kind, f.key) for f in off.flags] == [
        ("drift.goal_output", "final"),
        ("drift.plan", "1"),
    ]
    flags = await drift_flags(store, run_id=bad.run_id)
    assert [f.kind for f in flags] == ["drift.goal_output", "drift.plan"]
    assert flags[0].score < flags[0].threshold == 0.7
    assert flags[0].data["left"] == QUESTION and flags[0].data["right"] == OFF_TOPIC
    assert await drift_flags(store, run_id=good.run_id) == []
    assert len(await drift_flags(store, workflow="helpdesk")) == 2
    # checking again replaces the flags, it does not add more
    await check_drift(store, bad.run_id, monitor=monitor)
    assert len(await drift_flags(store, workflow="helpdesk")) == 2


class KeywordEmbedder:
    """Texts about passwords point one way, everything else the other: similarity 1 or 0."""

    name = "keyword"
    dimensions = 2

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0] if "password" in t.lower() else [0.0, 1.0] for t in texts]


def corrected(answers: list[str], max_corrections: int = 1) -> Any:
    model = ScriptedModel(answers)

    async def answer(state: Helpdesk, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat(state["question"])
        return {"answer": said.text}

    g = Graph(Helpdesk, name="helpdesk")
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    add_drift_route(
        g, after="answer", on_drift="answer", goal="question", output="answer",
        monitor=DriftMonitor(KeywordEmbedder()), max_corrections=max_corrections,
    )  # fmt: skip
    return g.compile()


async def test_the_route_sends_a_drifting_answer_back_once() -> None:
    store = MemoryStore()
    async with Runtime(store) as rt:
        fixed = await rt.run(corrected([OFF_TOPIC, FAITHFUL]), {"question": QUESTION})
        stubborn = await rt.run(corrected([OFF_TOPIC, OFF_TOPIC]), {"question": QUESTION})
        fine = await rt.run(corrected([FAITHFUL]), {"question": QUESTION})
    assert fixed.completed and fixed.state["answer"] == FAITHFUL
    assert fixed.state["drift"] == {
        "similarity": 1.0, "threshold": 0.7, "drifted": False, "checks": 2, "corrections": 0,
        "run_id": fixed.run_id,
    }  # fmt: skip
    assert [f.score for f in await drift_flags(store, run_id=fixed.run_id)] == [0.0]
    # still off after one correction: the run goes on, flagged twice
    assert stubborn.completed and stubborn.state["drift"]["drifted"] is True
    assert len(await drift_flags(store, run_id=stubborn.run_id)) == 2
    assert fine.state["drift"]["checks"] == 1
    assert await drift_flags(store, run_id=fine.run_id) == []
    events = [e.type for e in await store.list_events(fixed.run_id)]
    assert events.count("drift_flag") == 1


async def test_each_run_of_a_thread_gets_its_own_corrections() -> None:
    """The verdict carried over from the thread's previous run counted its checks: the
    follow-up's drifting answer went on uncorrected."""
    wf = corrected([OFF_TOPIC, FAITHFUL, OFF_TOPIC, FAITHFUL])
    async with Runtime(MemoryStore(), workflows=[wf]) as rt:
        first = await rt.run(wf, {"question": QUESTION}, thread_id="t")
        second = await rt.run(wf, {"question": QUESTION}, thread_id="t")
    assert first.state["answer"] == FAITHFUL
    assert second.state["answer"] == FAITHFUL  # corrected, like the first run
    assert second.state["drift"]["checks"] == 2
    assert second.state["drift"]["run_id"] == second.run_id


async def test_settings_and_fields_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        DriftMonitor(KeywordEmbedder(), threshold=0.0)
    store = MemoryStore()
    async with Runtime(store) as rt:
        res = await rt.run(helpdesk([FAITHFUL], []), {"question": QUESTION})
    with pytest.raises(ConfigurationError) as err:
        await check_drift(store, res.run_id, monitor=DriftMonitor(KeywordEmbedder()), goal="nope")
    assert "no field 'nope'" in str(err.value)
    report = await check_drift(
        store, res.run_id, monitor=DriftMonitor(KeywordEmbedder()), output=lambda s: s["answer"]
    )
    assert report.goal_output is not None and report.goal_output.similarity == 1.0


def test_the_route_needs_a_field_for_its_verdict() -> None:
    class NoDrift(TypedDict, total=False):
        question: str
        answer: str

    g = Graph(NoDrift, name="x")
    g.add_node("answer", lambda s: {"answer": "hi"})
    with pytest.raises(ConfigurationError) as err:
        add_drift_route(g, after="answer", on_drift="answer", goal="question", output="answer",
                        monitor=DriftMonitor(KeywordEmbedder()))  # fmt: skip
    assert "add `drift: dict`" in str(err.value)


async def test_a_node_checks_its_new_plan_against_the_last() -> None:
    from tether.evaluation import check_plan_drift

    monitor = DriftMonitor(KeywordEmbedder())
    seen: list[float | None] = []

    class Planning(TypedDict, total=False):
        plan: str

    plans = iter(["reset the password", "email the password link", "write a poem"])

    async def planner(state: Planning, ctx: RunContext) -> dict[str, Any]:
        new = next(plans)
        check = await check_plan_drift(monitor, state.get("plan"), new)
        seen.append(None if check is None else check.similarity)
        return {"plan": new}

    g = Graph(Planning, name="planning")
    g.add_node("plan", planner)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", lambda s: END if "poem" in s["plan"] else "plan", ["plan", END])
    store = MemoryStore()
    async with Runtime(store) as rt:
        res = await rt.run(g.compile(), {})
    assert seen == [None, 1.0, 0.0]  # the first has nothing to compare; the third strays
    (flag,) = await drift_flags(store, run_id=res.run_id)
    assert (flag.kind, flag.score, flag.data["step"]) == ("drift.plan", 0.0, 3)
