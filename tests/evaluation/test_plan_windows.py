"""Plan fidelity's windows (``tether.evaluation.plan_windows``): each journaled call carries out
the latest plan it was made after, the plans of parallel tasks are kept apart, and a run of
10,000 steps with a plan at each is read in one pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime, Send
from tether.evaluation import record_plan, run_kpis
from tether.evaluation.mindlog import MindEntry, MindLog
from tether.evaluation.plan_windows import plan_windows
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool


@tool(scope="read")
def search(q: str) -> str:
    """Search."""
    return f"hits for {q}"


@tool(scope="read")
def fetch(url: str) -> str:
    """Fetch a page."""
    return f"page at {url}"


class Job(TypedDict, total=False):
    question: str


def fan_out_workflow() -> Any:
    """``start`` sends two ``worker`` tasks into one step: one plans and runs ``search``, the
    other plans and runs ``fetch``."""
    tools = ToolExecutor([search, fetch])

    def start(state: Job) -> dict[str, Any]:
        return {}

    def route(state: Job) -> list[Send]:
        return [Send("worker", {"tool": "search"}), Send("worker", {"tool": "fetch"})]

    async def worker(arg: dict[str, str], ctx: RunContext) -> dict[str, Any]:
        name = arg["tool"]
        record_plan([name])
        args = {"q": "tether"} if name == "search" else {"url": "https://example.com"}
        await tools.call(name, args, ctx=ctx)
        return {}

    g = Graph(Job, name="fan")
    g.add_node("start", start)
    g.add_node("worker", worker)
    g.add_edge(START, "start")
    g.add_conditional_edges("start", route, ["worker"])
    g.add_edge("worker", END)
    return g.compile()


async def test_parallel_tasks_of_one_node_carry_out_their_own_plans(tmp_path: Path) -> None:
    """Each worker planned one tool and ran it: 2 of 2. Matching a plan's task by step and
    node only, the first worker's call fell after the second worker's plan, leaving its own
    plan unexecuted (1 of 2)."""
    store = SqliteStore(tmp_path / "fan.db")
    async with Runtime(store) as rt:
        res = await rt.run(fan_out_workflow(), {"question": "q"})
        assert res.completed
        k = await run_kpis(store, res.run_id)
    assert (k.plans, k.planned_steps, k.tool_calls) == (2, 2, 2)
    assert k.executed_planned == 2 and k.plan_fidelity == 1.0


RUN = "r1"


def _plan(step: int, steps: list[str], task: str, calls: dict[str, int]) -> dict[str, Any]:
    return {"steps": steps, "step": step, "task_id": f"{step}:{task}", "calls": calls}


def _call(i: int, step: int, task: str, tool_name: str, n: int) -> MindEntry:
    node = task.split(":")[0]
    key = f"{RUN}:{step}:{task}:tool:{tool_name}:{n}"
    return MindEntry(i, "action", tool_name, key, step, node, "done", 0.0)


def test_a_call_counts_for_one_plan_only() -> None:
    """Step 1: task b plans [fetch], then task a plans [search] and searches. The search
    carries out a's plan only; b's fetch never ran: 1 of 2 (it was counted for the plan
    before b's too, and for b's node, giving 2 of 3 over a phantom earlier window)."""
    plans = [
        _plan(0, ["search"], "lead:0", {}),
        _plan(1, ["fetch"], "b:0", {}),
        _plan(1, ["search"], "a:0", {}),
    ]
    log = MindLog(RUN, "w", [_call(0, 1, "a:0", "search", 0)], plans)
    assert plan_windows(log) == (3, 1)


def test_calls_before_their_task_planned_belong_to_the_earlier_plan() -> None:
    """A task's search before its own re-plan counts for the previous step's plan; the one
    after, for the re-plan."""
    plans = [
        _plan(1, ["search"], "p:0", {}),
        _plan(2, ["search", "search"], "a:0", {"tool:search": 1}),
    ]
    entries = [_call(0, 2, "a:0", "search", 0), _call(1, 2, "a:0", "search", 1)]
    assert plan_windows(MindLog(RUN, "w", entries, plans)) == (3, 2)


class Passes(list[MindEntry]):
    """A run's entries, counting the passes made over them."""

    passes = 0

    def __iter__(self) -> Iterator[MindEntry]:
        self.passes += 1
        return super().__iter__()


def test_ten_thousand_steps_each_with_a_plan_are_read_in_one_pass() -> None:
    """A plan and a tool call at each of 10,000 steps: every plan executed, the calls read
    once (they were read once per plan: 10^4 passes, 2 * 10^8 comparisons, a minute)."""
    n = 10_000
    plans = [_plan(s, ["lookup"], "agent:0", {}) for s in range(1, n + 1)]
    entries = Passes(_call(s - 1, s, "agent:0", "lookup", 0) for s in range(1, n + 1))
    assert plan_windows(MindLog(RUN, "long", entries, plans)) == (n, n)
    assert entries.passes == 1
