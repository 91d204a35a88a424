"""``Runtime.list_runs`` with near-miss filters: a wrong one is an InvalidInputError naming it.

Before, ``workflow=5`` (or ``parent_run_id=3``, ``workflow=""``) matched no run and listed
nothing, ``limit=-1`` listed nothing, ``dead_letter="yes"`` listed every run, and ``thread=``
(for ``thread_id=``) or ``dead_letter=True`` with a ``status`` failed with a TypeError from the
store's signature: a caller could not tell a mistake from an empty list."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, InvalidInputError, RunStatus, Runtime, SyncRuntime
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore


class S(TypedDict, total=False):
    n: int


def workflow() -> Any:
    g = Graph(S, name="wf")
    g.add_node("a", lambda s: {"n": 1}).add_edge(START, "a").add_edge("a", END)
    return g.compile()


NEAR_MISSES: list[tuple[dict[str, Any], str]] = [
    ({"workflow": 5}, "workflow must be a non-empty string .* got 5"),
    ({"workflow": ""}, "workflow must be a non-empty string"),
    ({"parent_run_id": 3}, "parent_run_id must be a non-empty string"),
    ({"tenant": ["acme"]}, "tenant must be a non-empty string"),
    ({"before": 7}, "before must be a non-empty string"),
    ({"thread_id": 5}, "thread_id must be a non-empty string"),
    ({"thread": "t1"}, "takes no filter 'thread' \\(did you mean thread_id=\\?\\); it takes: "),
    ({"stauts": "FAILED"}, "takes no filter 'stauts'"),
    ({"status": "bogus"}, "status must be a run status .*got 'bogus'"),
    ({"status": [RunStatus.FAILED, 3]}, "status must be a run status"),
    ({"limit": -1}, "limit must be >= 0 \\(the most runs to list\\), got -1"),
    ({"limit": "10"}, "limit must be a whole number"),
    ({"limit": 2.0}, "limit must be a whole number"),
    ({"offset": -1}, "offset must be >= 0"),
    ({"dead_letter": "yes"}, "dead_letter must be True or False"),
    ({"dead_letter": True, "status": "FAILED"}, "list_runs\\(dead_letter=True\\) takes no filter"),
    ({"dead_letter": True, "workflow": 5}, "workflow must be a non-empty string"),
    ({"queue": "q"}, "takes no filter 'queue'"),
]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RunStore:
    return MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "runs.db")


@pytest.mark.parametrize(("filters", "said"), NEAR_MISSES, ids=lambda v: str(v)[:40])
async def test_a_near_miss_filter_is_an_invalid_input_error(
    store: RunStore, filters: dict[str, Any], said: str
) -> None:
    wf = workflow()
    async with Runtime(store, workflows=[wf]) as rt:
        done = await rt.run(wf, {})
        with pytest.raises(InvalidInputError, match=said):
            await rt.list_runs(**filters)
        # the filters done right
        assert [r.run_id for r in await rt.list_runs(workflow="wf", status="COMPLETED")] == [
            done.run_id
        ]
        assert await rt.list_runs(limit=0) == []
        assert await rt.list_runs(dead_letter=True, workflow="wf", queue="default") == []
        assert [r.run_id for r in await rt.list_runs(dead_letter=False, limit=5)] == [done.run_id]


def test_the_sync_runtime_says_the_same(tmp_path: Path) -> None:
    wf = workflow()
    with SyncRuntime(SqliteStore(tmp_path / "runs.db"), workflows=[wf]) as rt:
        rt.run(wf, {})
        with pytest.raises(InvalidInputError, match="workflow must be a non-empty string"):
            rt.list_runs(workflow=5)
        with pytest.raises(InvalidInputError, match="limit must be >= 0"):
            rt.list_runs(limit=-1)
