"""Key runtime scenarios against every local store, including a fresh Runtime on a reopened
file: interrupt in one runtime, resume in another; history, fork and prune read back exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Graph,
    RunContext,
    RunResult,
    RunStateError,
    RunStatus,
    Runtime,
    add,
    append,
    interrupt,
)
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore


class S(TypedDict):
    n: int
    log: Annotated[list[str], append]
    total: Annotated[int, add]


CHARGES: list[int] = []


async def charge(amount: int) -> str:
    CHARGES.append(amount)
    return f"ch_{amount}"


async def pay(s: Any, ctx: RunContext) -> dict[str, Any]:
    receipt = await ctx.effect("charge", charge, s["n"])
    ok = interrupt({"receipt": receipt})
    return {"log": [receipt, ok]}


def build() -> Any:
    g = Graph(S, name="store_pay")
    g.add_node("inc", lambda s: {"n": s["n"] + 1, "total": s["n"] + 1, "log": f"i{s['n'] + 1}"})
    g.add_node("pay", pay)
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["n"] < 4 else "pay", ["inc", "pay"])
    g.add_edge("pay", END)
    return g.compile()


WF = build()


@pytest.fixture(params=["memory", "sqlite"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RunStore]:
    if request.param == "memory":
        store = MemoryStore()
        return lambda: store
    sqlite = pytest.importorskip("tether.store.sqlite")
    path = tmp_path / "runs.db"
    return lambda: sqlite.SqliteStore(path)


async def test_interrupt_in_one_runtime_resume_in_another(
    opener: Callable[[], RunStore],
) -> None:
    CHARGES.clear()
    async with Runtime(opener(), workflows=[WF], recover=False) as rt1:
        res = await rt1.run(WF, {"n": 0, "total": 0})
        assert res.status is RunStatus.ESCALATED
        assert res.interrupts[0]["payload"] == {"receipt": "ch_4"}
        run_id = res.run_id
    async with Runtime(opener(), workflows=[WF], recover=False) as rt2:
        done = await rt2.resume(run_id, "approved")
        assert isinstance(done, RunResult)
        assert done.status is RunStatus.COMPLETED
        assert done.state == {
            "n": 4,
            "total": 10,
            "log": ["i1", "i2", "i3", "i4", "ch_4", "approved"],
        }
        assert CHARGES == [4]  # the effect before the interrupt ran once across runtimes
        hist = await rt2.history(run_id)
        assert [h.step for h in hist] == [0, 1, 2, 3, 4, 5]
        assert [h.tasks for h in hist] == [
            [],
            ["1:inc:0"],
            ["2:inc:0"],
            ["3:inc:0"],
            ["4:inc:0"],
            ["5:pay:0"],
        ]
        for k in range(5):
            assert await rt2.get_state(run_id, k) == {
                "n": k,
                "total": k * (k + 1) // 2,
                "log": [f"i{i}" for i in range(1, k + 1)],
            }
        trs = [(t.src, t.dst) for t in await rt2.store.list_transitions(run_id)]
        assert trs[-4:] == [
            (RunStatus.EXECUTING, RunStatus.ESCALATED),
            (RunStatus.ESCALATED, RunStatus.EXECUTING),
            (RunStatus.EXECUTING, RunStatus.VALIDATING),
            (RunStatus.VALIDATING, RunStatus.COMPLETED),
        ]


async def test_fork_and_prune_read_back_exactly(opener: Callable[[], RunStore]) -> None:
    CHARGES.clear()
    async with Runtime(opener(), workflows=[WF], recover=False) as rt:
        res = await rt.run(WF, {"n": 0, "total": 0})
        child = await (await rt.fork(res.run_id, 2, {"n": 3})).wait()
        assert child.status is RunStatus.ESCALATED
        assert child.state == {"n": 4, "total": 7, "log": ["i1", "i2", "i4"]}
        assert await rt.prune(res.run_id, keep_last=2) == 3
        assert [h.step for h in await rt.history(res.run_id)] == [3, 4]
        assert await rt.get_state(res.run_id, 3) == {"n": 3, "total": 6, "log": ["i1", "i2", "i3"]}
        assert await rt.get_state(res.run_id) == {
            "n": 4,
            "total": 10,
            "log": ["i1", "i2", "i3", "i4"],
        }


async def test_concurrent_resumes_answer_once(opener: Callable[[], RunStore]) -> None:
    def form(s: Any) -> dict[str, Any]:
        first = interrupt("first?")
        second = interrupt("second?")
        return {"log": [first, second]}

    g = Graph(S, name="store_form")
    g.add_node("form", form).add_edge(START, "form")
    wf = g.compile()
    async with Runtime(opener(), recover=False) as rt:
        res = await rt.run(wf, {"n": 0})
        out = await asyncio.gather(
            rt.resume(res.run_id, "a"), rt.resume(res.run_id, "b"), return_exceptions=True
        )
        ok = [o for o in out if isinstance(o, RunResult)]
        errors = [o for o in out if isinstance(o, BaseException)]
        assert len(ok) == 1 and len(errors) == 1
        assert isinstance(errors[0], RunStateError)
        # the second question is still open: the losing answer was not queued behind it
        assert ok[0].status is RunStatus.ESCALATED
        assert [i["payload"] for i in ok[0].interrupts] == ["second?"]
        run = await rt.get_run(res.run_id)
        assert run.status is RunStatus.ESCALATED and run.owner is None
        done = await rt.resume(res.run_id, "c")
        assert isinstance(done, RunResult)
        first = "a" if out[0] is ok[0] else "b"
        assert done.state["log"] == [first, "c"]
