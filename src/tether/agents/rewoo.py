"""ReWOO (reasoning without observation): plan once, run the tools, solve once.

A planner model drafts the whole plan up front with placeholders (``#E1``, ``#E2``...) for
evidence it does not have yet; the ``work`` step (a TOOL phase) runs every step whose
dependencies are in, concurrently, and substitutes their evidence into the steps that wait on
them, wave after wave; a solver model writes the answer from the plan and the evidence (in a
governed run the plan is committed first: ``RewooOptions.commit_plan``). Two
model calls however many tools run — ReAct makes one per tool round, each re-reading the whole
history — so ``savings(rewoo_final, react_final)`` shows the calls and tokens saved::

    agent = rewoo_agent(RewooOptions(planner=model, solver=model, tools=executor))
    final = agent.invoke({"task": "..."})
    final["plan"], final["evidence"], final["answer"], final["model_calls"], final["tokens"]
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from tether.agents.options import need_count, need_governance, need_model, need_tools
from tether.agents.rewoo_plan import (
    Plan,
    PlanStep,
    as_text,
    plan_problems,
    plan_schema,
    planned_calls,
    ready_steps,
    substitute,
)
from tether.agents.spend import spend
from tether.core import serde
from tether.core.errors import StructuredOutputError
from tether.core.governor import GovernanceConfig, governor_of
from tether.core.messages import Message
from tether.core.reducers import add, merge
from tether.governance.plan import commit_plan as commit
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.state_fields import per_run
from tether.graph.types import END, START, Phase
from tether.llm.model import Model
from tether.llm.structured import generate_structured
from tether.llm.types import ModelResponse
from tether.tools.executor import ToolExecutor

PLANNER_SYSTEM = (
    "Make a plan to solve the task with the tools below, before seeing any result. Answer a "
    'JSON object {"steps": [{"id": "#E1", "tool": "<name>", "args": {...}, "reason": "..."}]}. '
    "A later step may use an earlier step's result by writing its id (#E1) in an argument."
)
SOLVER_SYSTEM = "Answer the task from the plan and the evidence gathered for it. Be brief."


class RewooState(TypedDict, total=False):
    """Everything but the task is the run's own (``per_run``): on a thread, a follow-up task
    gets a plan and evidence of its own, never the previous plan's results under the same
    step ids."""

    task: str
    plan: Annotated[list[dict[str, Any]], per_run]
    evidence: Annotated[dict[str, Any], merge, per_run]
    """Step id → the tool's value (or its error text, for the solver to weigh)."""
    waves: Annotated[int, add, per_run]
    tool_calls: Annotated[int, add, per_run]
    answer: Annotated[str, per_run]
    model_calls: Annotated[int, add, per_run]
    tokens: Annotated[int, add, per_run]


@dataclass(frozen=True)
class RewooOptions:
    planner: Model
    solver: Model
    tools: ToolExecutor
    planner_system: str = PLANNER_SYSTEM
    solver_system: str = SOLVER_SYSTEM
    max_repairs: int = 1
    """Repair rounds for a plan that is not valid JSON, breaks the schema or the rules."""
    max_steps: int = 12
    governance: GovernanceConfig | None = None
    commit_plan: bool = True
    """In a governed run, commit the drafted plan (``tether.governance.commit_plan``) before
    any tool runs: the planner saw only the task, so the injection guard lets the planned
    writes take values from the evidence (``#E1`` alone: from that step's result) and
    escalates any call outside the plan."""

    def __post_init__(self) -> None:
        need_model("RewooOptions", "planner", self.planner)
        need_model("RewooOptions", "solver", self.solver)
        need_tools("RewooOptions", self.tools)
        need_count("RewooOptions", "max_repairs", self.max_repairs, minimum=0)
        need_count("RewooOptions", "max_steps", self.max_steps)
        need_governance("RewooOptions", self.governance)


def tool_catalogue(tools: ToolExecutor) -> str:
    """One line per tool: ``name(arg: type, ...): description`` (compact: the planner reads it
    once, and every token of it is paid for)."""
    lines = []
    for c in tools.registry:
        props = c.input_schema.get("properties", {})
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
        lines.append(f"- {c.name}({args}): {c.description}")
    return "\n".join(lines)


async def draft_plan(options: RewooOptions, task: str) -> tuple[Plan, list[ModelResponse]]:
    """Ask the planner; a plan that is not JSON, breaks the schema or breaks the rules (unknown
    tool, a reference forward) is sent back with its problems: ``max_repairs`` rounds in all,
    whichever the problems were (at most ``max_repairs + 1`` planner calls)."""
    names = options.tools.registry.names()
    convo = [
        Message.system(f"{options.planner_system}\n\nTools:\n{tool_catalogue(options.tools)}"),
        Message.user(task),
    ]
    responses: list[ModelResponse] = []
    inputs = {c.name: c.input_schema for c in options.tools.registry}
    schema: dict[str, Any] | type[Plan] = plan_schema(inputs, options.max_steps) if inputs else Plan
    left = options.max_repairs  # repair rounds, shared by parse and rule problems
    while True:
        result = await generate_structured(options.planner, convo, schema, max_repairs=left)
        responses += [a.response for a in result.attempts]
        left -= len(result.attempts) - 1
        plan = result.value if isinstance(result.value, Plan) else Plan.model_validate(result.value)
        problems = plan_problems(plan, names)
        if len(plan.steps) > options.max_steps:
            problems.append(f"the plan has {len(plan.steps)} steps; at most {options.max_steps}")
        if not problems:
            return plan, responses
        if left <= 0:
            break
        left -= 1
        last = result.attempts[-1].response
        convo += [last.message(), Message.user("Fix the plan: " + "; ".join(problems))]
    raise StructuredOutputError(
        f"the ReWOO planner gave no runnable plan in {len(responses)} attempt(s): "
        + "; ".join(problems),
        model=options.planner.name,
        attempts=len(responses),
        errors=problems,
        last_output=responses[-1].text,
    )


def rewoo_agent(options: RewooOptions, *, name: str = "rewoo") -> Workflow:
    """The ReWOO pattern as a compiled workflow (input: ``{"task": ...}``)."""

    async def plan(state: RewooState, ctx: RunContext) -> dict[str, Any]:
        drafted, responses = await draft_plan(options, state["task"])
        ctx.emit("rewoo_plan", {"steps": [s.id for s in drafted.steps]})
        if options.commit_plan and governor_of(ctx) is not None:
            await commit(planned_calls(drafted), ctx=ctx)
        return {"plan": [s.model_dump() for s in drafted.steps], **spend(responses)}

    async def work(state: RewooState, ctx: RunContext) -> dict[str, Any]:
        steps = Plan(steps=[PlanStep.model_validate(s) for s in state["plan"]])
        evidence = dict(state.get("evidence", {}))
        wave = ready_steps(steps, evidence)
        # keys taken in plan order before the calls start: concurrent calls, stable journal
        keyed = [(s, ctx.call_key(f"tool:{s.tool}")) for s in wave]
        # every call of the wave settles before the node ends: one that parks the run (an
        # approval, a guard) must not leave the others running on after it parked
        settled = await asyncio.gather(
            *(
                options.tools.call(s.tool, substitute(s.args, evidence), ctx=ctx, key=key)
                for s, key in keyed
            ),
            return_exceptions=True,
        )
        raised = next((r for r in settled if isinstance(r, BaseException)), None)
        if raised is not None:
            raise raised
        results = [r for r in settled if not isinstance(r, BaseException)]
        found = {
            s.id: r.value if r.ok else r.for_model()
            for (s, _), r in zip(keyed, results, strict=True)
        }
        return {"evidence": found, "waves": 1, "tool_calls": len(wave)}

    def after_work(state: RewooState) -> str:
        steps = Plan(steps=[PlanStep.model_validate(s) for s in state["plan"]])
        return "work" if ready_steps(steps, state.get("evidence", {})) else "solve"

    async def solve(state: RewooState, ctx: RunContext) -> dict[str, Any]:
        evidence = state.get("evidence", {})
        lines = [
            f"{s['id']} = {s['tool']}({serde.dumps(s['args']).decode()}) -> "
            f"{as_text(evidence.get(s['id'], '(not run)'))}"
            for s in state["plan"]
        ]
        prompt = f"Task: {state['task']}\n\nPlan and evidence:\n" + "\n".join(lines)
        response = await options.solver.chat(
            [Message.system(options.solver_system), Message.user(prompt)]
        )
        return {"answer": response.text, **spend([response])}

    g = Graph(RewooState, name=name)
    g.add_node("plan", plan, phase=Phase.PLANNER)
    g.add_node("work", work, phase=Phase.TOOL)
    g.add_node("solve", solve, phase=Phase.AGENT)
    g.add_edge(START, "plan")
    g.add_edge("plan", "work")
    g.add_conditional_edges("work", after_work, ["work", "solve"])
    g.add_edge("solve", END)
    return g.compile(governance=options.governance)
