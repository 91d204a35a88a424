"""A run's events are read page by page: a long run's log is returned whole, not its first
page (``tether runs show`` once counted 499 of 1,500 model calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.graph.runtime import EVENT_PAGE
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore

CALLS = 2 * EVENT_PAGE + 500


class S(TypedDict):
    n: int


def chatty(s: Any, ctx: RunContext) -> dict[str, Any]:
    for i in range(CALLS):
        ctx.emit("model_call", {"model": "m", "input_tokens": 2, "output_tokens": 1, "i": i})
    return {"n": 1}


def _workflow() -> Any:
    g = Graph(S, name="chatty")
    g.add_node("talk", chatty)
    g.add_edge(START, "talk")
    g.add_edge("talk", END)
    return g.compile()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RunStore:
    return MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "ev.db")


async def test_events_of_a_long_run_are_all_returned(store: RunStore) -> None:
    async with Runtime(store, recover=False) as rt:
        res = await rt.run(_workflow(), {"n": 0})
        got = [e async for e in rt.events(res.run_id, follow=False)]
        calls = [e for e in got if e.type == "model_call"]
        assert [e.data["i"] for e in calls] == list(range(CALLS))
        assert [e.seq for e in got] == list(range(1, len(got) + 1))
        assert len(got) == (await rt.get_run(res.run_id)).event_seq
