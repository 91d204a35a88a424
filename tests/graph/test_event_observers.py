"""``EventBus.observe``: an observer sees every event of the runs this process executes (live
step and node events included), a failing observer never stops a run, and events relayed from
other processes are not shown to it."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunStatus, Runtime
from tether.graph.events import EventBus
from tether.store.memory import MemoryStore
from tether.store.types import Event


class S(TypedDict, total=False):
    n: int


def _wf() -> Any:
    g = Graph(S, name="observed")
    g.add_node("a", lambda s: {"n": s.get("n", 0) + 1})
    g.add_node("b", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g.compile()


async def test_an_observer_sees_live_and_stored_events_of_every_run() -> None:
    seen: list[Event] = []
    async with Runtime(MemoryStore(), recover=False) as rt:
        rt.bus.observe(seen.append)
        res = await rt.run(_wf(), {})
    assert res.status is RunStatus.COMPLETED
    kinds = [e.type for e in seen]
    assert kinds.count("step_finished") == 2
    assert {"step_started", "node_started", "node_finished"} <= set(kinds)  # live-only ones
    finals = [e.data["to"] for e in seen if e.type == "lifecycle"]
    assert finals[-1] == "COMPLETED"
    assert {e.run_id for e in seen} == {res.run_id}


async def test_a_failing_observer_is_logged_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(ev: Event) -> None:
        raise ValueError("observer bug")

    seen: list[str] = []
    async with Runtime(MemoryStore(), recover=False) as rt:
        rt.bus.observe(broken)
        rt.bus.observe(lambda ev: seen.append(ev.type))
        res = await rt.run(_wf(), {})
    assert res.status is RunStatus.COMPLETED and res.state["n"] == 2
    assert "step_finished" in seen  # the observer after the broken one still sees everything
    assert "an event observer failed" in caplog.text


def test_events_relayed_from_other_processes_reach_subscribers_not_observers() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.observe(seen.append)
    q = bus.subscribe("r1")
    ev = Event("r1", 0, "model_token", 1.0, None, None, {"delta": "hi"})
    bus.deliver_remote(ev)
    bus.deliver_remote(Event("r2", 0, "model_token", 1.0, None, None, {"delta": "x"}))
    assert q.get_nowait() is ev and q.empty()
    assert seen == []  # counted by the process that executes the run
    bus.publish(ev)
    assert seen == [ev] and q.get_nowait() is ev
    assert bus.has_subscribers("any-run")  # an observer wants every run's live events
