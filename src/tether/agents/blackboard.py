"""Blackboard: a shared structured board, specialists (knowledge sources) that react to
changes of the keys they watch, and a controller that picks who acts next.

Each turn is two steps: ``control`` picks one of the triggered sources (by default the first
in the order given; or ``controller(board, candidates)``, a function, or a Model asked to name
one: ``blackboard_control``), then ``act`` runs it; what it writes is merged into ``board``
and triggers the sources watching those keys. The run ends when ``goal(board)`` holds, when
nobody is triggered, or after ``max_turns`` (``stopped`` says which). ``log`` keeps who acted
on which turn and what they wrote::

    sources = [
        KnowledgeSource("parse", watches=("text",), act=lambda b: {"numbers": [...]}),
        KnowledgeSource("total", watches=("numbers",), act=lambda b: {"total": sum(b["numbers"])}),
    ]
    wf = blackboard(BlackboardOptions(sources=sources, goal=lambda b: "total" in b))
    wf.invoke({"board": {"text": "3 apples and 4 pears"}})
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from tether.agents.blackboard_control import ask_model
from tether.agents.options import need_count, need_governance
from tether.agents.spend import spend
from tether.core.errors import ConfigurationError, InvalidUpdateError
from tether.core.governor import GovernanceConfig
from tether.core.reducers import add, append, merge
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.state_fields import per_run
from tether.graph.types import END, START
from tether.llm.model import Model

Board = dict[str, Any]
SourceFn = Callable[..., Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
"""``act(board)`` or ``act(board, ctx)`` → the keys to write."""
Controller = Callable[[Board, list[str]], str | Awaitable[str]]


@dataclass(frozen=True)
class KnowledgeSource:
    name: str
    watches: tuple[str, ...]
    act: SourceFn
    description: str = ""


class BlackboardState(TypedDict, total=False):
    """Every field is the run's own (``per_run``): on a thread, a follow-up run works the
    board its input gives, never stopping at a goal the previous run's board already met."""

    board: Annotated[dict[str, Any], merge, per_run]
    triggered: Annotated[list[str], per_run]
    """Sources waiting to act, in the order they were triggered."""
    chosen: Annotated[str, per_run]
    log: Annotated[list[dict[str, Any]], append, per_run]
    turns: Annotated[int, add, per_run]
    stopped: Annotated[str, per_run]
    """``goal``, ``quiet`` (nobody triggered) or ``max_turns``."""
    model_calls: Annotated[int, add, per_run]
    tokens: Annotated[int, add, per_run]


@dataclass(frozen=True)
class BlackboardOptions:
    sources: Sequence[KnowledgeSource]
    goal: Callable[[Board], bool]
    controller: Controller | Model | None = None
    max_turns: int = 12
    max_repairs: int = 1
    """With a Model controller: rounds in which an answer naming no candidate (or several) goes
    back to it with the candidates; past them the run fails (StructuredOutputError)."""
    governance: GovernanceConfig | None = None

    def __post_init__(self) -> None:
        for s in self.sources:
            if not isinstance(s, KnowledgeSource) or not callable(s.act):
                raise ConfigurationError(
                    f"BlackboardOptions.sources holds {s!r}; each must be a "
                    "KnowledgeSource(name, watches, act)"
                )
            if not isinstance(s.name, str) or not s.name.strip():
                raise ConfigurationError(
                    f"a knowledge source needs a non-empty name (the controller picks it by "
                    f"name), got {s.name!r}"
                )
            if isinstance(s.watches, str):
                raise ConfigurationError(
                    f"source {s.name!r}: watches is a tuple of board keys, not one string"
                )
        names = [s.name for s in self.sources]
        if not names or len(set(names)) != len(names):
            raise ConfigurationError(
                f"BlackboardOptions.sources needs sources with distinct names, got {names}"
            )
        if not callable(self.goal):
            raise ConfigurationError("BlackboardOptions.goal must be a function board -> bool")
        need_count("BlackboardOptions", "max_turns", self.max_turns)
        need_count("BlackboardOptions", "max_repairs", self.max_repairs, minimum=0)
        need_governance("BlackboardOptions", self.governance)


def triggered_by(sources: Sequence[KnowledgeSource], keys: set[str], skip: str = "") -> list[str]:
    return [s.name for s in sources if s.name != skip and keys & set(s.watches)]


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    out = fn(*args)
    return await out if inspect.isawaitable(out) else out


def blackboard(options: BlackboardOptions, *, name: str = "blackboard") -> Workflow:
    """The blackboard pattern (input: ``{"board": {...}}``)."""
    by_name = {s.name: s for s in options.sources}

    async def control(state: BlackboardState, ctx: RunContext) -> dict[str, Any]:
        board = dict(state.get("board", {}))
        turns = state.get("turns", 0)
        pending = state.get("triggered")
        if pending is None:  # the first turn: whoever watches what the board starts with
            pending = triggered_by(options.sources, set(board))
        if options.goal(board):
            return {"stopped": "goal", "chosen": "", "triggered": pending}
        if not pending:
            return {"stopped": "quiet", "chosen": "", "triggered": []}
        if turns >= options.max_turns:
            return {"stopped": "max_turns", "chosen": "", "triggered": pending}
        update: dict[str, Any] = {}
        if options.controller is None:
            chosen = pending[0]
        elif isinstance(options.controller, Model):
            descriptions = {n: by_name[n].description for n in pending}
            chosen, responses = await ask_model(
                options.controller, board, descriptions, options.max_repairs
            )
            update.update(spend(responses))
        else:
            chosen = await call(options.controller, board, list(pending))
            if chosen not in pending:
                raise ConfigurationError(
                    f"the blackboard controller picked {chosen!r}; it must pick one of {pending}"
                )
        return {**update, "chosen": chosen, "triggered": [n for n in pending if n != chosen]}

    async def act(state: BlackboardState, ctx: RunContext) -> dict[str, Any]:
        source = by_name[state["chosen"]]
        board = dict(state.get("board", {}))
        nargs = len(inspect.signature(source.act).parameters)
        wrote = await (call(source.act, board, ctx) if nargs >= 2 else call(source.act, board))
        if not isinstance(wrote, Mapping):
            raise InvalidUpdateError(
                f"blackboard source {source.name!r} returned {type(wrote).__name__}; it must "
                "return a dict of board keys to write"
            )
        wrote = dict(wrote)
        changed = {k for k, v in wrote.items() if board.get(k, object()) != v}
        new = triggered_by(options.sources, changed, skip=source.name)
        pending = list(state.get("triggered", []))
        pending += [n for n in new if n not in pending]
        turn = state.get("turns", 0) + 1
        entry = {"turn": turn, "source": source.name, "wrote": sorted(wrote)}
        return {"board": wrote, "triggered": pending, "turns": 1, "log": [entry]}

    def route(state: BlackboardState) -> str:
        return "act" if state.get("chosen") else END

    g = Graph(BlackboardState, name=name)
    g.add_node("control", control)
    g.add_node("act", act)
    g.add_edge(START, "control")
    g.add_conditional_edges("control", route, ["act", END])
    g.add_edge("act", "control")
    return g.compile(governance=options.governance)
