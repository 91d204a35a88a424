"""``Runtime.history`` pages: the pages of a long run, joined, are its whole history."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, Runtime
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore

STEPS = 25


class S(TypedDict):
    n: int


def _looping() -> Any:
    g = Graph(S, name="loop")
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_node("done", lambda s: {"n": s["n"]})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["n"] < STEPS else "done", ["inc", "done"])
    g.add_edge("done", END)
    return g.compile()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RunStore:
    return MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "h.db")


async def test_history_pages_join_into_the_whole_history(store: RunStore) -> None:
    async with Runtime(store, recover=False) as rt:
        res = await rt.run(_looping(), {"n": 0}, max_steps=100)
        whole = await rt.history(res.run_id)
        assert len(whole) == STEPS + 2  # step 0, the increments, "done"
        pages, after = [], None
        while page := await rt.history(res.run_id, after_step=after, limit=4):
            assert len(page) <= 4
            pages.append(page)
            after = page[-1].step
        # equal in every field: the first step of each page names the tasks it ran from the
        # step before it, which the page fetches alongside
        assert [s for p in pages for s in p] == whole
        assert [len(p) for p in pages] == [4] * 6 + [3]
        assert await rt.history(res.run_id, limit=0) == []
        assert await rt.history(res.run_id, after_step=whole[-1].step) == []


async def test_history_and_state_take_whole_numbers_of_any_size(store: RunStore) -> None:
    """``limit=10**20`` raised OverflowError on SQLite, ``after_step="3"`` a TypeError, and
    ``get_state(run, "2")`` read as no step 2 on one backend and a mistake on another."""
    from tether.core.errors import InvalidInputError, StepNotFoundError

    async with Runtime(store, recover=False) as rt:
        res = await rt.run(_looping(), {"n": 0}, max_steps=100)
        whole = await rt.history(res.run_id)
        assert await rt.history(res.run_id, limit=10**20) == whole
        assert await rt.history(res.run_id, after_step=10**20) == []
        assert await rt.history(res.run_id, after_step=-(10**20)) == whole
        with pytest.raises(StepNotFoundError, match=str(10**20)):
            await rt.get_state(res.run_id, 10**20)
        for bad in ("3", 1.5, True):
            with pytest.raises(InvalidInputError, match="must be a whole number"):
                await rt.history(res.run_id, after_step=bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError, match="must be a whole number"):
                await rt.history(res.run_id, limit=bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError, match="must be a whole number"):
                await rt.get_state(res.run_id, bad)  # type: ignore[arg-type]
        assert (await rt.get_state(res.run_id, 3))["n"] == 3
