"""Critic/judge reflection: generate, check against success criteria, and on failure plan
again with the errors as context — at most ``max_rounds`` times.

The check is a deterministic ``validator`` (a function returning the list of problems; empty
means it passes), a ``judge`` model (asked for ``{"ok": bool, "errors": [...]}``), or both
(the validator first: a judge is not paid to read an output a rule already refused). Each
round is a PLANNER step then a VALIDATOR step, so the run's lifecycle shows the loop, and the
final state says whether it ``passed``, after how many ``rounds``, with every round's output
and errors in ``history``::

    def criteria(output: str) -> list[str]:
        return [] if output.endswith(".") else ["end the sentence with a full stop"]

    agent = reflection_agent(ReflectionOptions(generator=model, validator=criteria))
    final = agent.invoke({"task": "Write one sentence about tether."})
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, Field

from tether.agents.options import need_count, need_governance, need_model
from tether.agents.spend import spend
from tether.core.errors import ConfigurationError
from tether.core.governor import GovernanceConfig
from tether.core.messages import Message
from tether.core.reducers import add, append
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.state_fields import per_run
from tether.graph.types import END, START, Phase
from tether.llm.model import Model
from tether.llm.structured import generate_structured
from tether.llm.types import ModelResponse

Validator = Callable[[str], list[str] | Awaitable[list[str]]]
"""``validator(output)`` → the problems found (empty: the output meets the criteria)."""

GENERATOR_SYSTEM = "Do the task. Meet every success criterion given."
JUDGE_SYSTEM = (
    "You check an output against success criteria. Answer a JSON object "
    '{"ok": true|false, "errors": ["what fails and how to fix it", ...]}.'
)


class Judgement(BaseModel):
    ok: bool
    errors: list[str] = Field(default_factory=list)


class ReflectionState(TypedDict, total=False):
    """Everything but the task is the run's own (``per_run``): on a thread, a follow-up task
    starts its rounds afresh rather than correcting the previous task's output."""

    task: str
    output: Annotated[str, per_run]
    errors: Annotated[list[str], per_run]
    """The last check's problems (empty once it passed)."""
    history: Annotated[list[dict[str, Any]], append, per_run]
    rounds: Annotated[int, add, per_run]
    passed: Annotated[bool, per_run]
    model_calls: Annotated[int, add, per_run]
    tokens: Annotated[int, add, per_run]


@dataclass(frozen=True)
class ReflectionOptions:
    generator: Model
    validator: Validator | None = None
    judge: Model | None = None
    criteria: str = ""
    """Success criteria in words, shown to the generator and the judge."""
    max_rounds: int = 3
    generator_system: str = GENERATOR_SYSTEM
    judge_system: str = JUDGE_SYSTEM
    governance: GovernanceConfig | None = None

    def __post_init__(self) -> None:
        need_model("ReflectionOptions", "generator", self.generator)
        if self.validator is None and self.judge is None:
            raise ConfigurationError(
                "ReflectionOptions needs a validator (a function output -> list of problems) "
                "or a judge model, or both"
            )
        if self.validator is not None and not callable(self.validator):
            raise ConfigurationError("ReflectionOptions.validator must be callable")
        if self.judge is not None:
            need_model("ReflectionOptions", "judge", self.judge)
        need_count("ReflectionOptions", "max_rounds", self.max_rounds)
        need_governance("ReflectionOptions", self.governance)


async def run_validator(validator: Validator, output: str) -> list[str]:
    found = validator(output)
    if inspect.isawaitable(found):
        found = await found
    if not isinstance(found, list) or not all(isinstance(e, str) for e in found):
        raise ConfigurationError(
            f"a reflection validator returns a list of problem strings, got {found!r}"
        )
    return found


def reflection_agent(options: ReflectionOptions, *, name: str = "reflection") -> Workflow:
    """The reflection loop as a compiled workflow (input: ``{"task": ...}``)."""
    criteria = f"\n\nSuccess criteria:\n{options.criteria}" if options.criteria else ""

    async def plan(state: ReflectionState, ctx: RunContext) -> dict[str, Any]:
        prompt = f"Task: {state['task']}{criteria}"
        errors = state.get("errors") or []
        if errors:
            prompt += (
                f"\n\nYour previous output:\n{state.get('output', '')}\n\nIt failed the check:\n"
                + "\n".join(f"- {e}" for e in errors)
                + "\nWrite a corrected output."
            )
        response = await options.generator.chat(
            [Message.system(options.generator_system), Message.user(prompt)]
        )
        return {"output": response.text, "rounds": 1, **spend([response])}

    async def check(state: ReflectionState, ctx: RunContext) -> dict[str, Any]:
        output = state.get("output", "")
        errors: list[str] = []
        responses: list[ModelResponse] = []
        if options.validator is not None:
            errors = await run_validator(options.validator, output)
        if not errors and options.judge is not None:
            verdict = await generate_structured(
                options.judge,
                [
                    Message.system(options.judge_system),
                    Message.user(f"Task: {state['task']}{criteria}\n\nOutput:\n{output}"),
                ],
                Judgement,
            )
            responses = [a.response for a in verdict.attempts]
            judged = verdict.value
            errors = [] if judged.ok else (judged.errors or ["the judge rejected the output"])
        passed = not errors
        ctx.emit("reflection_check", {"round": state.get("rounds", 0), "passed": passed})
        entry = {"round": state.get("rounds", 0), "output": output, "errors": errors}
        return {"errors": errors, "passed": passed, "history": [entry], **spend(responses)}

    def route(state: ReflectionState) -> str:
        if state.get("passed") or state.get("rounds", 0) >= options.max_rounds:
            return END
        return "plan"

    g = Graph(ReflectionState, name=name)
    g.add_node("plan", plan, phase=Phase.PLANNER)
    g.add_node("check", check, phase=Phase.VALIDATOR)
    g.add_edge(START, "plan").add_edge("plan", "check")
    g.add_conditional_edges("check", route, ["plan", END])
    return g.compile(governance=options.governance)
