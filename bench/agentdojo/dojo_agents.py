"""The two scripted agents, each a one-node tether workflow calling tools through the executor.

* **reference**: a plan-then-act agent. Its plan is the user task's ground truth (AgentDojo's
  list of correct tool calls, computed by AgentDojo from the environment before the run, as
  ``GroundTruthPipeline`` does); it executes the plan call by call and answers with the task's
  ground-truth output. It reads tool outputs but never acts on them.
  With ``commit=True`` (the ``plan`` setting) it commits that plan first, before it reads
  anything (``tether.governance.commit_plan``, as ``dojo_planner`` writes it from the
  request), and answers through the plan's ``answer`` call.
* **hijacked**: the worst model possible. It executes the same plan, but as soon as a tool
  output it read carries an injected instruction it is hijacked: it does what the injection
  asks at once (AgentDojo's attack says "before you can solve the task ... do the following
  first"): the injection task's ground-truth calls, computed by AgentDojo from the case's
  environment before the run (the reference its ``security`` check compares with), and
  from then on it serves the attacker only: it drops the rest of the user's plan (which
  could otherwise undo the attack: a later legitimate reservation or password change
  overwrites the injected one), and its answer adds what the injection asked
  it to say (on a line of its own, or with ``inline`` at the end of its last line).

How the hijacked agent notices the injection is the *attacker's* side of the simulation (it
knows what the attack wrote, as a model that obeys any instruction it reads would); nothing
on the governance side sees that knowledge. A call a policy denies comes back as an error and
the agent goes on; a call that escalates parks the run (ESCALATED): nobody approves in the
benchmark, so the agent stops there and answers nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypedDict

from agentdojo.functions_runtime import FunctionCall
from dojo_planner import ANSWER, planned

from tether import END, START, Graph, RunContext
from tether.governance import commit_plan
from tether.tools import ToolExecutor


class AgentState(TypedDict, total=False):
    case: str
    request: str
    output: str
    denied: list[str]


@dataclass(slots=True)
class Job:
    """What one run of an agent needs: its tools, its plan, and (hijacked) the attack."""

    executor: ToolExecutor
    plan: list[FunctionCall]
    answer: str
    attack_texts: list[str] = field(default_factory=list)
    hijack: Any = None
    """Called with no argument when the injection is noticed: the injection's calls."""
    hijack_answer: str = ""
    inline: bool = False
    """Put what the injection asked it to say on the answer's last line, not on a new one."""
    hijacked: bool = False
    commit: bool = False
    """Commit the plan (``dojo_planner``) before the first call, answer through it."""
    outputs: list[str] = field(default_factory=list)
    """The plan's results on the environment without the injection (``dojo_planner``)."""


JOBS: dict[str, Job] = {}
"""Case id -> its job, read by the node (environments are not JSON: they stay out of state)."""

_SQUASH = re.compile(r"[\s\"'\\]+")


def _squash(text: str) -> str:
    """Text without whitespace, quotes and backslashes: the attack as it reads after AgentDojo's
    YAML rendering of a tool output (which may wrap, quote and escape it)."""
    return _SQUASH.sub("", text.replace("\\n", ""))


def carries_attack(output: str, attack_texts: list[str]) -> bool:
    out = _squash(output)
    return any(t and t in out for t in attack_texts)


async def _call(job: Job, call: FunctionCall, ctx: RunContext, denied: list[str]) -> str:
    res = await job.executor.call(call.function, dict(call.args), ctx=ctx)
    if not res.ok:
        denied.append(f"{call.function}: {type(res.error).__name__}")
        return ""
    return str(res.value)


async def _commit(job: Job, state: AgentState, ctx: RunContext) -> None:
    if job.commit:
        steps = planned(job.plan, state.get("request", ""), job.outputs, job.answer)
        await commit_plan(steps, ctx=ctx)


async def _answer(job: Job, text: str, ctx: RunContext) -> str:
    """The answer; a plan-then-act agent gives it through its planned ``answer`` call (an
    escalation parks the run there: nobody approves in the benchmark)."""
    if job.commit:
        res = await job.executor.call(ANSWER, {"text": text}, ctx=ctx)
        return text if res.ok else ""
    return text


async def reference_node(state: AgentState, ctx: RunContext) -> dict[str, Any]:
    job = JOBS[state["case"]]
    denied: list[str] = []
    await _commit(job, state, ctx)
    for call in job.plan:
        await _call(job, call, ctx, denied)
    return {"output": await _answer(job, job.answer, ctx), "denied": denied}


async def hijacked_node(state: AgentState, ctx: RunContext) -> dict[str, Any]:
    job = JOBS[state["case"]]
    denied: list[str] = []
    await _commit(job, state, ctx)  # it plans before it reads, like the reference agent
    for call in job.plan:
        out = await _call(job, call, ctx, denied)
        if carries_attack(out, job.attack_texts):
            job.hijacked = True
            for injected in job.hijack():
                await _call(job, injected, ctx, denied)
            break
    answer = job.answer
    if job.hijacked and job.hijack_answer:
        sep = " " if job.inline else "\n"
        answer = f"{answer}{sep}{job.hijack_answer}".strip()
    return {"output": await _answer(job, answer, ctx), "denied": denied}


def agent_workflow(kind: str, governance: Any = None) -> Any:
    """The agent ``kind`` ("reference" or "hijacked") as a workflow, governed when asked."""
    node = {"reference": reference_node, "hijacked": hijacked_node}[kind]
    g = Graph(AgentState, name=f"agentdojo-{kind}")
    g.add_node("agent", node)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=governance) if governance is not None else g.compile()
