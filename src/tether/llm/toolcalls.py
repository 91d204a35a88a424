"""Check a model's tool calls against the tools it was offered, and tell it what to fix.

A model may name a tool that does not exist, write arguments that are not JSON, or write JSON
that breaks the tool's schema. ``check_tool_calls`` finds all three; ``problem_messages`` turns
them into ``tool`` messages (one per call id) so the model can correct itself on the next turn;
``chat_with_tool_repair`` runs that loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from tether.core.errors import InvalidInputError
from tether.core.messages import Message, ToolCall, ToolSpec
from tether.llm.model import Model
from tether.llm.request import MessagesLike, ToolLike, as_messages, as_tool_spec
from tether.llm.structured import schema_errors
from tether.llm.types import ModelResponse

ProblemKind = Literal["unknown_tool", "unparseable_arguments", "invalid_arguments"]


@dataclass(frozen=True)
class ToolCallProblem:
    call: ToolCall
    kind: ProblemKind
    errors: tuple[str, ...]

    def describe(self, tools: Sequence[str] = ()) -> str:
        """The error text the model reads: what is wrong and how to fix it."""
        if self.kind == "unknown_tool":
            known = ", ".join(tools) or "none"
            return (
                f"error: there is no tool named {self.call.name!r}. Available tools: {known}. "
                "Fix: call one of them by its exact name."
            )
        if self.kind == "unparseable_arguments":
            return (
                f"error: the arguments for {self.call.name!r} are not a JSON object "
                f"({self.errors[0]}). Fix: call it again with arguments as one JSON object."
            )
        listed = "; ".join(self.errors)
        return (
            f"error: invalid arguments for {self.call.name!r}: {listed}. "
            "Fix: call it again with arguments matching its parameter schema."
        )


def check_tool_calls(calls: Iterable[ToolCall], tools: Sequence[ToolSpec]) -> list[ToolCallProblem]:
    """The problems of each call, in call order; an empty list means every call is valid.
    (A ToolSpec's parameter schema was checked to be a valid JSON schema when it was built.)"""
    by_name = {t.name: t for t in tools}
    problems: list[ToolCallProblem] = []
    for call in calls:
        spec = by_name.get(call.name)
        if spec is None:
            problems.append(ToolCallProblem(call, "unknown_tool", (f"unknown tool {call.name}",)))
            continue
        arguments: Any = call.arguments
        if call.raw_arguments is not None and not call.arguments:
            try:
                arguments = orjson.loads(call.raw_arguments)
            except orjson.JSONDecodeError as exc:
                problems.append(ToolCallProblem(call, "unparseable_arguments", (str(exc),)))
                continue
            if not isinstance(arguments, dict):
                kind = type(arguments).__name__
                problems.append(
                    ToolCallProblem(call, "unparseable_arguments", (f"got a JSON {kind}",))
                )
                continue
        errors = schema_errors(spec.parameters, arguments)
        if errors:
            problems.append(ToolCallProblem(call, "invalid_arguments", tuple(errors)))
    return problems


def problem_messages(
    problems: Sequence[ToolCallProblem], tools: Sequence[ToolSpec] = ()
) -> list[Message]:
    """One ``tool`` message per problem, answering its call id with the error and the fix."""
    names = [t.name for t in tools]
    return [Message.tool(p.call.id, p.describe(names), name=p.call.name) for p in problems]


@dataclass(frozen=True)
class ToolRepairResult:
    response: ModelResponse
    """The last answer; its tool calls are valid when ``problems`` is empty."""
    problems: tuple[ToolCallProblem, ...]
    attempts: int

    @property
    def ok(self) -> bool:
        return not self.problems


async def chat_with_tool_repair(
    model: Model,
    messages: MessagesLike,
    tools: Iterable[ToolLike],
    *,
    max_repairs: int = 2,
    **chat_options: Any,
) -> ToolRepairResult:
    """``model.chat`` with tools; while the answer has invalid tool calls, answer every call of
    that turn (the invalid ones with their error, the valid ones as not run) and ask again, at
    most ``max_repairs`` times. The caller decides what to do if problems remain."""
    if max_repairs < 0:
        raise InvalidInputError(f"max_repairs must be 0 or more, got {max_repairs}")
    specs = [as_tool_spec(t) for t in tools]  # schemas checked here, before any paid call
    names = [t.name for t in specs]
    conversation = list(as_messages(messages))
    attempt = 0
    while True:
        attempt += 1
        response = await model.chat(conversation, tools=specs, **chat_options)
        problems = check_tool_calls(response.tool_calls, specs)
        if not problems or attempt > max_repairs:
            return ToolRepairResult(response, tuple(problems), attempt)
        by_id = {p.call.id: p for p in problems}
        answers = [
            Message.tool(c.id, by_id[c.id].describe(names), name=c.name)
            if c.id in by_id
            else Message.tool(c.id, "not run: another call in this turn was invalid; call again.")
            for c in response.tool_calls
        ]
        conversation += [response.message(), *answers]
