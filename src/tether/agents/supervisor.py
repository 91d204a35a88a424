"""A supervisor over specialist agents: it assigns tasks, specialists do them (handing a task
off to another specialist when it is not theirs), a conflict resolver orders tasks that depend
on each other, and the supervisor writes the final answer.

1. ``plan`` (PLANNER): the supervisor model answers ``{"tasks": [{"id", "agent", "task",
   "depends_on"}]}``; the resolver (``supervisor_plan.resolve``) drops unknown dependencies and
   breaks cycles, recording each as a ``conflicts`` entry.
2. ``work``, once per wave: every task whose dependencies are done runs at once, each a
   graph task of its own (``Send``) reading its dependencies' outputs. A specialist is a Model
   (asked with its own system prompt) or a compiled workflow, run as a durable child run
   (input ``{"task": ...}``, output its ``answer``) — a specialist may itself be a
   supervisor: a hierarchy. A question the child asks a human (an ``interrupt()``, an
   approval) parks the supervisor's run with ``{"task", "specialist", "run_id",
   "question"}``; resuming it passes the answer down to the child, which goes on; a child that
   escalates otherwise (a budget trip, a guard) escalates the supervisor with its kind; one
   that fails fails it, and a retry of the supervisor (``resume``) retries the child. An
   answer starting ``HANDOFF <agent>:`` passes the task to that specialist (at most
   ``max_handoffs`` times; ``handoff``); a Model specialist that names no other specialist is
   told so and asked again, within those hops.
3. ``synthesize`` (AGENT): the supervisor answers the task from every output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from tether.agents.children import asked, child_spend, retry_failed, settle, start_child
from tether.agents.handoff import read_handoff
from tether.agents.options import need_count, need_governance, need_model
from tether.agents.spend import spend
from tether.agents.supervisor_plan import Assignment, Assignments, ready, resolve
from tether.core.errors import ConfigurationError, RunFailedError, StructuredOutputError
from tether.core.governor import GovernanceConfig
from tether.core.lifecycle import RunStatus
from tether.core.messages import Message
from tether.core.reducers import add, append, merge
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.relay import Relay
from tether.graph.results import RunResult
from tether.graph.state_fields import per_run
from tether.graph.types import END, START, Phase, Send
from tether.llm.model import Model
from tether.llm.structured import generate_structured
from tether.llm.types import ModelResponse

PLAN_SYSTEM = (
    "You lead a team of specialists. Split the task into tasks for them. Answer a JSON object "
    '{"tasks": [{"id": "t1", "agent": "<specialist>", "task": "...", "depends_on": []}]}; a '
    "task that needs another's result lists that task's id in depends_on."
)
SYNTH_SYSTEM = "Write the final answer to the task from your specialists' results."


@dataclass(frozen=True)
class Specialist:
    agent: Model | Workflow
    description: str
    system: str = ""


class SupervisorState(TypedDict, total=False):
    """Everything but the task is the run's own (``per_run``): on a thread, a follow-up task
    is assigned and worked afresh, never answered from the previous run's outputs under the
    same task ids."""

    task: str
    tasks: Annotated[list[dict[str, Any]], per_run]
    conflicts: Annotated[list[str], per_run]
    outputs: Annotated[dict[str, str], merge, per_run]
    handoffs: Annotated[list[dict[str, Any]], append, per_run]
    waves: Annotated[int, add, per_run]
    answer: Annotated[str, per_run]
    model_calls: Annotated[int, add, per_run]
    tokens: Annotated[int, add, per_run]


@dataclass(frozen=True)
class SupervisorOptions:
    supervisor: Model
    specialists: Mapping[str, Specialist]
    max_tasks: int = 8
    max_handoffs: int = 2
    """Handoffs per task; past that the last answer stands."""
    max_repairs: int = 1
    """Rounds in which an assignment that cannot run goes back to the supervisor."""
    plan_system: str = PLAN_SYSTEM
    synth_system: str = SYNTH_SYSTEM
    governance: GovernanceConfig | None = None

    def __post_init__(self) -> None:
        need_model("SupervisorOptions", "supervisor", self.supervisor)
        if not self.specialists:
            raise ConfigurationError("SupervisorOptions.specialists needs at least one")
        for name, spec in self.specialists.items():
            if not isinstance(spec, Specialist) or not isinstance(spec.agent, Model | Workflow):
                raise ConfigurationError(
                    f"specialist {name!r} must be a Specialist(agent=<Model or Workflow>, ...)"
                )
        need_count("SupervisorOptions", "max_tasks", self.max_tasks)
        need_count("SupervisorOptions", "max_handoffs", self.max_handoffs, minimum=0)
        need_count("SupervisorOptions", "max_repairs", self.max_repairs, minimum=0)
        need_governance("SupervisorOptions", self.governance)


def roster(specialists: Mapping[str, Specialist]) -> str:
    return "\n".join(f"- {n}: {s.description}" for n, s in specialists.items())


def ended(agent: str, res: RunResult) -> str:
    """Why a workflow specialist's run did not complete, for the supervisor's failure."""
    why = (res.error or {}).get("message", "")
    said = f"specialist {agent} ended {res.status.value}" + (f": {why}" if why else "")
    if res.status is RunStatus.FAILED:
        said += "; resume the supervisor's run to retry the specialist"
    return said


def assignment_problems(options: SupervisorOptions, plan: Assignments) -> list[str]:
    problems = []
    unknown = sorted({t.agent for t in plan.tasks} - set(options.specialists))
    if unknown:
        problems.append(
            f"unknown specialist(s) {unknown}; assign only {sorted(options.specialists)}"
        )
    if len(plan.tasks) > options.max_tasks:
        problems.append(f"{len(plan.tasks)} tasks; at most {options.max_tasks}")
    if len({t.id for t in plan.tasks}) != len(plan.tasks):
        problems.append("task ids repeat; give each task its own id")
    return problems


async def assign(options: SupervisorOptions, task: str) -> tuple[Assignments, list[ModelResponse]]:
    """Ask the supervisor for assignments; one that names an unknown specialist, has too many
    tasks or repeats an id goes back with its problems, ``max_repairs`` times."""
    convo = [
        Message.system(f"{options.plan_system}\n\nSpecialists:\n{roster(options.specialists)}"),
        Message.user(task),
    ]
    responses: list[ModelResponse] = []
    problems: list[str] = []
    for _ in range(options.max_repairs + 1):
        result = await generate_structured(options.supervisor, convo, Assignments)
        responses += [a.response for a in result.attempts]
        problems = assignment_problems(options, result.value)
        if not problems:
            return result.value, responses
        convo += [
            result.attempts[-1].response.message(),
            Message.user("Fix the assignments: " + "; ".join(problems)),
        ]
    raise StructuredOutputError(
        "the supervisor's assignment cannot run: " + "; ".join(problems),
        model=options.supervisor.name,
        attempts=len(responses),
        errors=problems,
        last_output=responses[-1].text,
    )


def supervisor_agent(options: SupervisorOptions, *, name: str = "supervisor") -> Workflow:
    """The supervisor pattern as a compiled workflow (input: ``{"task": ...}``)."""

    async def plan(state: SupervisorState, ctx: RunContext) -> dict[str, Any]:
        assigned, responses = await assign(options, state["task"])
        tasks, conflicts = resolve(assigned.tasks)
        if conflicts:
            ctx.emit("conflicts_resolved", {"conflicts": conflicts})
        return {
            "tasks": [t.model_dump() for t in tasks],
            "conflicts": conflicts,
            **spend(responses),
        }

    async def work(arg: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """One task, in its own graph task (a Send): its model calls have their own journal
        keys, so tasks of a wave run concurrently and still replay exactly."""
        t = Assignment.model_validate(arg["assignment"])
        context: str = arg["context"]
        relay = Relay(ctx)
        agent, handoffs, spent = t.agent, list[dict[str, Any]](), list[ModelResponse]()
        by_children = {"model_calls": 0, "tokens": 0}  # what workflow specialists spent
        answer, correction = "", list[Message]()
        for hop in range(options.max_handoffs + 1):
            spec = options.specialists[agent]
            text = f"{t.task}\n\n{context}" if context else t.task
            others = [n for n in options.specialists if n != agent]
            if isinstance(spec.agent, Model):
                system = spec.system or f"You are the {agent} specialist: {spec.description}"
                system += (
                    f"\nIf the task belongs to another specialist ({', '.join(others)}), "
                    "answer 'HANDOFF <name>: <why>' instead."
                )
                response = await spec.agent.chat(
                    [Message.system(system), Message.user(text), *correction]
                )
                spent.append(response)
                answer = response.text
            else:
                rec = await start_child(
                    ctx, spec.agent, (ctx.task_id, hop), {"task": text}, {"specialist": agent}
                )
                await retry_failed(ctx, rec)  # the supervisor is retried: so is its child
                child = rec.run_id

                def ask(res: RunResult, specialist: str = agent) -> dict[str, Any]:
                    return {
                        "task": t.id,
                        "specialist": specialist,
                        "run_id": res.run_id,
                        "question": asked(res),
                    }

                # a question the specialist asks (an interrupt, an approval) is the parent's
                res = await settle(ctx, relay, child, ask)
                if res.status is not RunStatus.COMPLETED:
                    raise RunFailedError(child, ended(agent, res), res.error)
                answer = str(res.state.get("answer", ""))
                for field, n in (await child_spend(ctx.host, res)).items():
                    by_children[field] += n
            h = read_handoff(answer, list(options.specialists))
            if h is None or hop == options.max_handoffs:
                break
            if h.to is None or h.to == agent:  # to nobody, or to itself: asked to do it
                ctx.emit("handoff_refused", {"task": t.id, "from": agent, "to": h.said})
                if not isinstance(spec.agent, Model):
                    break
                correction = [
                    response.message(),
                    Message.user(
                        f"{h.said!r} is not another specialist: do the task yourself, or hand "
                        f"it off to one of {others}"
                    ),
                ]
                continue
            handoffs.append({"task": t.id, "from": agent, "to": h.to, "why": h.why})
            agent, correction = h.to, []
        own = spend(spent)
        total = {field: own[field] + by_children[field] for field in own}
        return {"outputs": {t.id: answer}, "handoffs": handoffs, **total}

    def fan(state: SupervisorState) -> list[Send] | str:
        """The next wave: a Send per ready task (with its dependencies' results), or the end."""
        tasks = [Assignment.model_validate(t) for t in state["tasks"]]
        outputs = state.get("outputs", {})
        wave = ready(tasks, outputs)
        if not wave:
            return "synthesize"
        return [
            Send(
                "work",
                {
                    "assignment": t.model_dump(),
                    "context": "\n".join(f"Result of {d}: {outputs[d]}" for d in t.depends_on),
                },
            )
            for t in wave
        ]

    def collect(state: SupervisorState) -> dict[str, Any]:
        return {"waves": 1}

    async def synthesize(state: SupervisorState, ctx: RunContext) -> dict[str, Any]:
        outputs = state.get("outputs", {})
        lines = [f"{t['id']} ({t['agent']}): {outputs.get(t['id'], '')}" for t in state["tasks"]]
        response = await options.supervisor.chat(
            [
                Message.system(options.synth_system),
                Message.user(f"Task: {state['task']}\n\nResults:\n" + "\n".join(lines)),
            ]
        )
        return {"answer": response.text, **spend([response])}

    g = Graph(SupervisorState, name=name)
    g.add_node("plan", plan, phase=Phase.PLANNER)
    g.add_node("work", work)
    g.add_node("collect", collect)
    g.add_node("synthesize", synthesize)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", fan, ["work", "synthesize"])
    g.add_edge("work", "collect")
    g.add_conditional_edges("collect", fan, ["work", "synthesize"])
    g.add_edge("synthesize", END)
    return g.compile(governance=options.governance)
