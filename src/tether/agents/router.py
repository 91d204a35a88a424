"""A semantic router in front of specialists: the input goes to the specialist whose example
utterances are nearest in meaning (MiniLM embeddings by default, ``tether.llm.SemanticRouter``),
or to the fallback under the threshold.

The routing decision is journaled, so a resumed or replayed run goes to the same specialist
without embedding again. A specialist is a node function (``fn(state)`` or ``fn(state, ctx)``)
or a compiled workflow (run as a child run); it reads ``task`` and usually writes ``answer``::

    router = semantic_router(RouterOptions(
        routes={"billing": ["I was charged twice", "refund my order"],
                "tech": ["the app crashes", "I cannot log in"]},
        specialists={"billing": billing_agent, "tech": tech_agent, "fallback": general_agent},
    ))
    final = router.invoke({"task": "my card got billed two times"})
    final["route"], final["score"], final["answer"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from tether.agents.options import need_governance
from tether.core.errors import ConfigurationError
from tether.core.governor import GovernanceConfig
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.state import StateSchema
from tether.graph.types import END, START
from tether.llm.embeddings import Embedder
from tether.llm.router import SemanticRouter

Specialist = Callable[..., Any] | Workflow
ROUTER_WRITES = ("route", "score", "matched", "fallback")
"""The fields the routing step writes."""


class RouterState(TypedDict, total=False):
    task: str
    route: str
    score: float
    matched: str
    fallback: bool
    answer: str


@dataclass(frozen=True)
class RouterOptions:
    routes: Mapping[str, Sequence[str]]
    """Route name → example utterances."""
    specialists: Mapping[str, Specialist]
    """Route name → who handles it; must cover every route and the fallback."""
    fallback: str = "fallback"
    threshold: float = 0.5
    embedder: Embedder | None = None
    """None: the llm plane's default (all-MiniLM-L6-v2); tests inject a HashingEmbedder."""
    input: str = "task"
    state: type[Any] = RouterState
    """The workflow's state class: RouterState, or yours with its fields."""
    governance: GovernanceConfig | None = None
    router: SemanticRouter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = [r for r in [*self.routes, self.fallback] if r not in self.specialists]
        if missing:
            raise ConfigurationError(
                f"RouterOptions.specialists has no specialist for {missing}; give every route "
                f"and the fallback {self.fallback!r} one"
            )
        extra = [s for s in self.specialists if s not in self.routes and s != self.fallback]
        if extra:
            raise ConfigurationError(
                f"RouterOptions.specialists {extra} have no route; add their example "
                "utterances to routes, or remove them"
            )
        taken = [n for n in self.specialists if n in ("route", START, END)]
        if taken:
            raise ConfigurationError(
                f"RouterOptions: a route or the fallback may not be named {taken[0]!r}; the "
                f"router's graph keeps {['route', START, END]} for itself: rename it"
            )
        fields = set(StateSchema(self.state).fields)
        missing = [f for f in (self.input, *ROUTER_WRITES) if f not in fields]
        if missing:
            raise ConfigurationError(
                f"RouterOptions.state {getattr(self.state, '__name__', self.state)} has no "
                f"field(s) {missing}: the router reads input={self.input!r} and writes "
                f"{list(ROUTER_WRITES)}; add them (or build the state on RouterState)"
            )
        need_governance("RouterOptions", self.governance)
        router = SemanticRouter(
            self.routes, embedder=self.embedder, threshold=self.threshold, fallback=self.fallback
        )
        object.__setattr__(self, "router", router)


def semantic_router(options: RouterOptions, *, name: str = "semantic_router") -> Workflow:
    """A workflow: ``route`` (journaled decision) → the chosen specialist → END."""

    async def route(state: Mapping[str, Any], ctx: RunContext) -> dict[str, Any]:
        text = state.get(options.input)
        if not isinstance(text, str):
            text = ""

        async def decide() -> dict[str, Any]:
            match = await options.router.route(text)
            return {
                "route": match.route or options.fallback,
                "score": match.score,
                "matched": match.matched_example,
                "fallback": match.fallback,
            }

        decision: dict[str, Any] = await ctx.journaled("route", {"text": text[:2000]}, decide)
        ctx.emit("routed", decision)
        return decision

    targets = list(options.specialists)
    g = Graph(options.state, name=name)
    g.add_node("route", route)
    for target, specialist in options.specialists.items():
        g.add_node(target, specialist)
        g.add_edge(target, END)
    g.add_edge(START, "route")
    g.add_conditional_edges("route", lambda s: s["route"], targets)
    return g.compile(governance=options.governance)
