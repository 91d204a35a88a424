"""ReAct: thought → tool → observation, looped, with structured tool calls and argument repair.

Each ``think`` step asks the model with the tools offered; tool calls whose arguments are not
JSON, or break the tool's schema, get one repair round (``max_repairs``) in which the model
reads the validation error and calls again. Valid calls run in the ``act`` step (a TOOL
phase) through the ``ToolExecutor`` — journaled, governed, never repeated on replay — and their
results go back as observations. The loop stops at an answer (a turn without tool calls) or
after ``max_iterations`` thoughts, with ``stopped`` saying which. On a thread
(``runtime.run(agent, {"task": ...}, thread_id=...)``) a follow-up task continues the
conversation, while the counters and the iteration limit are the run's own (``per_run``)::

    agent = react_agent(ReactOptions(model=model, tools=ToolExecutor([search])))
    final = agent.invoke({"task": "Who wrote Dune?"})
    final["answer"], final["stopped"], final["model_calls"], final["tokens"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from tether.agents.options import need_count, need_governance, need_model, need_tools
from tether.agents.spend import spend
from tether.core.governor import GovernanceConfig
from tether.core.messages import Message, ToolSpec
from tether.core.reducers import add, append
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.state_fields import per_run
from tether.graph.types import END, START, Phase
from tether.llm.model import Model
from tether.llm.toolcalls import ToolCallProblem, check_tool_calls
from tether.llm.types import ModelResponse
from tether.tools.executor import ToolExecutor

EMPTY_ANSWER = "Your reply was empty. Answer the task, or call a tool to find out what you need."
DEFAULT_SYSTEM = (
    "You solve the user's task step by step. Think about what you need, call a tool to get "
    "it, read the observation, and repeat. When you know the answer, reply with it and call "
    "no tool."
)


class ReactState(TypedDict, total=False):
    task: str
    messages: Annotated[list[dict[str, Any]], append]
    """The conversation: each run's task (a user message) and the agent's turns after it
    (assistant thoughts and calls, tool observations). On a thread it carries over, so a
    follow-up task is read after the earlier exchanges."""
    answer: Annotated[str, per_run]
    next: Annotated[str, per_run]
    """Where the loop goes after a thought: ``act``, ``think`` (a call left invalid) or ``end``."""
    iterations: Annotated[int, add, per_run]
    repairs: Annotated[int, add, per_run]
    tool_calls: Annotated[int, add, per_run]
    model_calls: Annotated[int, add, per_run]
    tokens: Annotated[int, add, per_run]
    stopped: Annotated[str, per_run]
    """``answered``, ``max_iterations``, or ``empty_answer`` (the model's reply had neither
    text nor a tool call, after the repair rounds)."""


@dataclass(frozen=True)
class ReactOptions:
    model: Model
    tools: ToolExecutor
    system: str = DEFAULT_SYSTEM
    max_iterations: int = 6
    """Thoughts (model turns, repairs not counted) before the loop stops without an answer."""
    max_repairs: int = 1
    """Repair rounds for invalid tool calls within one thought."""
    max_tokens: int | None = None
    governance: GovernanceConfig | None = None
    history_runs: int | None = None
    """On a thread: how many earlier runs' exchanges (each a task and the turns answering it)
    the model is shown before the current task; None shows them all. The state keeps them all;
    this bounds the prompt of a long conversation."""

    def __post_init__(self) -> None:
        need_model("ReactOptions", "model", self.model)
        need_tools("ReactOptions", self.tools)
        need_count("ReactOptions", "max_iterations", self.max_iterations)
        need_count("ReactOptions", "max_repairs", self.max_repairs, minimum=0)
        if self.history_runs is not None:
            need_count("ReactOptions", "history_runs", self.history_runs, minimum=0)
        need_governance("ReactOptions", self.governance)


def not_run(response: ModelResponse, why: str) -> list[Message]:
    """A tool message for every call of a turn that will not run, saying why: a conversation
    may not leave a call unanswered (providers refuse the next request that carries it)."""
    return [Message.tool(c.id, f"not run: {why}", name=c.name) for c in response.tool_calls]


def recent(history: list[Message], runs: int | None, current: bool) -> list[Message]:
    """``history`` from the start of the last ``runs`` earlier exchanges on (an exchange starts
    at its task, a user message, so a call never loses its result); ``current``: the last
    exchange is the run's own and is always kept."""
    if runs is None:
        return history
    starts = [i for i, m in enumerate(history) if m.role == "user"]
    keep = runs + (1 if current else 0)
    if len(starts) <= keep:
        return history
    return history[starts[-keep] :] if keep else []


def problem_answers(
    response: ModelResponse, problems: list[ToolCallProblem], names: list[str]
) -> list[Message]:
    """A tool message for every call of the turn: the invalid ones with their error and the
    fix, the valid ones as not run (a turn's calls are answered together)."""
    by_id = {p.call.id: p for p in problems}
    return [
        Message.tool(c.id, by_id[c.id].describe(names), name=c.name)
        if c.id in by_id
        else Message.tool(c.id, "not run: another call in this turn was invalid", name=c.name)
        for c in response.tool_calls
    ]


def own_ids(response: ModelResponse, conversation: list[Message]) -> ModelResponse:
    """``response`` with a call id of its own for every tool call whose id is empty or already
    used, in this answer or earlier in the conversation (some OpenAI-compatible servers number
    the calls of each answer from ``call_0``): a tool result answers exactly one call, or the
    provider refuses the next request. A first use keeps the model's id; a repeat becomes
    ``<id>_2``, ``<id>_3``... (deterministic: a replayed answer gets the same ids)."""
    taken = {c.id for m in conversation for c in m.tool_calls}
    taken |= {m.tool_call_id for m in conversation if m.tool_call_id}
    calls, changed = [], False
    for call in response.tool_calls:
        new_id, n = call.id or "call", 1
        while not new_id or new_id in taken:
            n += 1
            new_id = f"{call.id or 'call'}_{n}"
        taken.add(new_id)
        changed |= new_id != call.id
        calls.append(call if new_id == call.id else call.model_copy(update={"id": new_id}))
    return response.model_copy(update={"tool_calls": tuple(calls)}) if changed else response


def is_empty(response: ModelResponse) -> bool:
    """An answer with neither a tool call nor any text: no answer at all."""
    return not response.tool_calls and not response.text.strip()


async def think_with_repair(
    model: Model,
    conversation: list[Message],
    specs: list[ToolSpec],
    max_repairs: int,
    max_tokens: int | None,
) -> tuple[ModelResponse, list[ToolCallProblem], list[ModelResponse]]:
    """One thought: ask, and while its tool calls are invalid (and repairs are left) feed the
    errors back and ask again; an empty reply (no text, no call) is asked again too. Returns
    the last answer, its remaining problems, every answer (each call with an id of its own in
    the conversation: ``own_ids``)."""
    names = [s.name for s in specs]
    answers: list[ModelResponse] = []
    convo = list(conversation)
    while True:
        response = own_ids(await model.chat(convo, tools=specs, max_tokens=max_tokens), convo)
        answers.append(response)
        problems = check_tool_calls(response.tool_calls, specs)
        empty = is_empty(response)
        if (not problems and not empty) or len(answers) > max_repairs:
            return response, problems, answers
        if empty:
            convo += [Message.user(EMPTY_ANSWER)]
        else:
            convo += [response.message(), *problem_answers(response, problems, names)]


def react_agent(options: ReactOptions, *, name: str = "react") -> Workflow:
    """The ReAct loop as a compiled workflow (input: ``{"task": ...}``)."""
    specs = [contract.tool_spec() for contract in options.tools.registry]
    names = [s.name for s in specs]

    async def think(state: ReactState, ctx: RunContext) -> dict[str, Any]:
        history = [Message.model_validate(m) for m in state.get("messages", [])]
        asked: list[Message] = []
        if "next" not in state:  # the run's first thought (next is set by every thought)
            asked = [Message.user(state["task"])]
        elif not any(m.role == "user" for m in history):  # a run begun before tasks were kept
            history = [Message.user(state["task"]), *history]
        shown = recent(history, options.history_runs, current=not asked)
        conversation = [Message.system(options.system), *shown, *asked]
        response, problems, answers = await think_with_repair(
            options.model, conversation, specs, options.max_repairs, options.max_tokens
        )
        turn = [*asked, response.message()]
        iteration = state.get("iterations", 0) + 1
        update: dict[str, Any] = {
            **spend(answers),
            "iterations": 1,
            "repairs": len(answers) - 1,
        }
        if problems:
            turn += problem_answers(response, problems, names)
        if not response.tool_calls:
            empty = is_empty(response)
            answer = "" if empty else response.text
            update.update(
                next="end", answer=answer, stopped="empty_answer" if empty else "answered"
            )
        elif iteration >= options.max_iterations:
            update.update(next="end", answer="", stopped="max_iterations")
            if not problems:
                turn += not_run(response, "the agent reached its iteration limit")
        else:
            update["next"] = "think" if problems else "act"
        ctx.emit(
            "react_thought",
            {
                "iteration": iteration,
                "calls": [c.name for c in response.tool_calls],
                "invalid": len(problems),
            },
        )
        update["messages"] = [m.model_dump(mode="json") for m in turn]
        return update

    async def act(state: ReactState, ctx: RunContext) -> dict[str, Any]:
        last = Message.model_validate(state["messages"][-1])
        observations = []
        for call in last.tool_calls:
            result = await options.tools.call(call.name, call.arguments, ctx=ctx)
            observations.append(Message.tool(call.id, result.for_model(), name=call.name))
        return {
            "messages": [m.model_dump(mode="json") for m in observations],
            "tool_calls": len(observations),
        }

    def route(state: ReactState) -> str:
        nxt = state.get("next", "end")
        return END if nxt == "end" else nxt

    g = Graph(ReactState, name=name)
    g.add_node("think", think, phase=Phase.AGENT)
    g.add_node("act", act, phase=Phase.TOOL)
    g.add_edge(START, "think")
    g.add_conditional_edges("think", route, ["act", "think", END])
    g.add_edge("act", "think")
    return g.compile(governance=options.governance)
