"""Graph builder and the compiled, validated Workflow."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.core import serde
from tether.core.errors import GraphDefinitionError
from tether.core.governor import GovernanceConfig
from tether.graph.breakpoints import breakpoint_nodes
from tether.graph.run_retry import RunRetry
from tether.graph.signatures import count_positional
from tether.graph.state import StateSchema
from tether.graph.types import END, NO_RETRY, START, NodeSpec, Phase, RetryPolicy
from tether.graph.version import describe_workflow

Route = Callable[..., Any]


@dataclass(slots=True)
class ConditionalEdge:
    source: str
    route: Route
    targets: tuple[str, ...] | None
    """Declared possible targets (for validation and reachability); None = any node."""
    path_map: dict[Any, str] | None = None


class Graph:
    """Builds a workflow: nodes, edges, conditional routes, barriers and subgraphs.

    >>> from typing import TypedDict
    >>> class S(TypedDict):
    ...     n: int
    >>> g = Graph(S, name="count")
    >>> _ = g.add_node("inc", lambda s: {"n": s["n"] + 1})
    >>> _ = g.add_edge(START, "inc").add_edge("inc", END)
    >>> wf = g.compile()
    """

    def __init__(self, state: type[Any] | None = None, *, name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise GraphDefinitionError(
                f"a workflow's name is a non-empty string (runs record it), got {name!r}"
            )
        self.state_schema = StateSchema(state)
        self.name = name or (state.__name__.lower() if state is not None else "workflow")
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.barriers: list[tuple[tuple[str, ...], str]] = []
        self.conditional: list[ConditionalEdge] = []
        self.default_retry: RetryPolicy = NO_RETRY
        self.module: str | None = sys._getframe(1).f_globals.get("__name__")

    def add_node(
        self,
        name: str,
        fn: Callable[..., Any] | Workflow,
        *,
        phase: Phase | str = Phase.AGENT,
        retry: RetryPolicy | None = None,
        thread: bool = False,
        metadata: dict[str, Any] | None = None,
        destinations: Sequence[str] | None = None,
    ) -> Graph:
        """Add a node: ``fn(state)`` or ``fn(state, ctx)``, sync or async, or a compiled Workflow.

        A node returns a partial state update (dict), a ``Command``, or None. Sync nodes run on
        the event loop; pass ``thread=True`` for one that blocks (slow I/O, heavy CPU).
        ``destinations`` declares where its ``Command(goto=...)`` may go: those nodes count as
        reachable, and a goto anywhere else is an InvalidRouteError.
        """
        if not isinstance(name, str) or not name or name in (START, END):
            raise GraphDefinitionError(f"invalid node name {name!r}")
        if name in self.nodes:
            raise GraphDefinitionError(f"node {name!r} is already defined")
        try:
            phase = Phase(phase)
        except ValueError:
            raise GraphDefinitionError(
                f"node {name!r}: unknown phase {phase!r}; use one of {[p.value for p in Phase]}"
            ) from None
        sub = fn if isinstance(fn, Workflow) else None
        if sub is None and not callable(fn):
            raise GraphDefinitionError(
                f"node {name!r} must be a callable or a Workflow, got {fn!r}"
            )
        if sub is not None:
            if sub.name == self.name:
                raise GraphDefinitionError(
                    f"subgraph node {name!r} runs workflow {sub.name!r}, which has the same name "
                    "as this graph; a runtime knows one workflow per name, so give one of them "
                    "its own: Graph(State, name='...')"
                )
            self._check_subgraph_fields(name, sub)
            spec = NodeSpec(
                name, _subgraph_marker, True, True, phase, retry or NO_RETRY, False, sub
            )
        else:
            assert callable(fn)
            nargs = count_positional(fn)
            if nargs not in (1, 2):
                raise GraphDefinitionError(
                    f"node {name!r}: a node function takes (state) or (state, ctx), "
                    f"{getattr(fn, '__name__', fn)} takes {nargs} positional arguments"
                )
            is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
                getattr(fn, "__call__", None)  # noqa: B004
            )
            spec = NodeSpec(name, fn, is_async, nargs == 2, phase, retry or NO_RETRY, thread)
        spec.metadata = dict(metadata or {})
        if destinations is not None:
            if isinstance(destinations, str):
                raise GraphDefinitionError(
                    f"node {name!r}: destinations must be a list of node names, not a string"
                )
            spec.destinations = tuple(destinations)
        self.nodes[name] = spec
        return self

    def _check_subgraph_fields(self, name: str, sub: Workflow) -> None:
        """A subgraph's writes reach the parent folded into one write per field; a custom
        reducer cannot be folded faithfully, so sharing such a field is refused up front."""
        mine = self.state_schema.fields
        for field_name in sub.schema.fields:
            f = mine.get(field_name)
            if f is not None and f.reducer.name.startswith("custom:"):
                raise GraphDefinitionError(
                    f"subgraph node {name!r} shares field {field_name!r}, whose reducer is a "
                    "custom function; a subgraph's writes to it cannot be combined faithfully. "
                    "Use a built-in reducer (append, merge, add, maximum, minimum, union) for "
                    "it, or rename the field in the subgraph's state"
                )

    def add_edge(self, source: str | Sequence[str], target: str) -> Graph:
        """``a -> b``; with a list of sources, ``target`` waits for all of them (a join)."""
        if not isinstance(target, str):
            raise GraphDefinitionError(
                f"add_edge goes to one node, got {target!r}; for a fan-out add one edge per "
                "target (add_edge(a, b), add_edge(a, c)), or route with add_conditional_edges"
            )
        if isinstance(source, str):
            self.edges.append((source, target))
        else:
            srcs = tuple(source)
            if not srcs:
                raise GraphDefinitionError("add_edge needs at least one source")
            if len(srcs) == 1:
                self.edges.append((srcs[0], target))
            else:
                self.barriers.append((srcs, target))
        return self

    def add_conditional_edges(
        self,
        source: str,
        route: Route,
        targets: Sequence[str] | dict[Any, str] | None = None,
    ) -> Graph:
        """After ``source`` finishes, ``route(state)`` names where to go: a node, END, a list of
        nodes, or ``Send`` objects. ``targets`` declares the possible results (a list, or a
        mapping from route result to node) so the graph can be validated when compiled."""
        if not callable(route):
            raise GraphDefinitionError(f"route for {source!r} must be callable")
        if isinstance(targets, str):  # its letters would be taken for the node names
            raise GraphDefinitionError(
                f"conditional edge from {source!r}: targets must be a list of node names, not "
                f"a string: targets=[{targets!r}]"
            )
        path_map = dict(targets) if isinstance(targets, dict) else None
        declared = (
            tuple(path_map.values())
            if path_map is not None
            else tuple(targets)
            if targets is not None
            else None
        )
        self.conditional.append(ConditionalEdge(source, route, declared, path_map))
        return self

    def set_entry(self, node: str) -> Graph:
        return self.add_edge(START, node)

    def set_finish(self, node: str) -> Graph:
        return self.add_edge(node, END)

    set_entry_point = set_entry  # LangGraph's names for the two
    set_finish_point = set_finish

    def compile(
        self,
        *,
        retry: RetryPolicy | None = None,
        replan_node: str | None = None,
        max_replans: int = 2,
        validate: bool = True,
        interrupt_before: Sequence[str] = (),
        interrupt_after: Sequence[str] = (),
        run_retry: RunRetry | None = None,
        governance: GovernanceConfig | None = None,
    ) -> Workflow:
        """Validate and freeze the graph. ``replan_node`` is where a failed step is re-planned
        (EXECUTING → FAILED → PLANNED), at most ``max_replans`` times per run.

        ``interrupt_before`` / ``interrupt_after`` are static breakpoints (see
        ``tether.graph.breakpoints``): the run parks ESCALATED before a step that runs one of
        those nodes, or after a step that ran one; ``runtime.resume(run_id)`` goes on.

        ``run_retry`` (``tether.graph.run_retry.RunRetry``) retries the whole run, on any worker
        and after a backoff, when it fails with a retryable error, then dead-letters it;
        ``retry`` is the per-node policy of nodes that have none (retries within a step).

        ``governance`` (``tether.governance.Governance``) governs every run: budgets, loop
        guards, policies and approvals around each model and tool call."""
        if governance is not None and not isinstance(governance, GovernanceConfig):
            raise GraphDefinitionError(
                "governance must be a tether.governance.Governance, got "
                f"{type(governance).__name__}"
            )
        if run_retry is not None and not isinstance(run_retry, RunRetry):
            raise GraphDefinitionError(
                f"run_retry must be a RunRetry, got {type(run_retry).__name__} (a node-level "
                "RetryPolicy goes in retry=)"
            )
        before = breakpoint_nodes(self, "interrupt_before", interrupt_before)
        after = breakpoint_nodes(self, "interrupt_after", interrupt_after)
        if retry is not None:
            for spec in self.nodes.values():
                if spec.retry is NO_RETRY:
                    spec.retry = retry
        wf = Workflow(self, replan_node=replan_node, max_replans=max_replans, validate=validate)
        wf.interrupt_before, wf.interrupt_after = before, after
        wf.run_retry = run_retry
        wf.governance = governance
        wf.check()
        return wf


@dataclass(slots=True)
class Workflow:
    """A compiled graph. Immutable in use; run it with a ``Runtime``."""

    graph: Graph
    replan_node: str | None = None
    max_replans: int = 2
    validate: bool = True
    name: str = ""
    order: dict[str, int] = field(default_factory=dict)
    static_out: dict[str, tuple[str, ...]] = field(default_factory=dict)
    routes_out: dict[str, tuple[ConditionalEdge, ...]] = field(default_factory=dict)
    barrier_in: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = field(default_factory=dict)
    ref: str | None = None
    interrupt_before: frozenset[str] = frozenset()
    interrupt_after: frozenset[str] = frozenset()
    run_retry: RunRetry | None = None
    """Run-level retries and the dead letter (``compile(run_retry=...)``); None: a failed run
    stays FAILED."""
    governance: GovernanceConfig | None = None
    """Budgets, guards, policies... of every run (``compile(governance=...)``, see
    ``tether.governance``); None: ungoverned."""
    version: str = ""
    """A fingerprint of the workflow's structure (see ``describe``); stored with each run, so a
    run is never resumed by a different workflow that took its name."""

    def __post_init__(self) -> None:
        g = self.graph
        self.name = g.name
        self.order = {n: i for i, n in enumerate(g.nodes)}
        out: dict[str, list[str]] = {}
        for s, t in g.edges:
            out.setdefault(s, []).append(t)
        self.static_out = {k: tuple(v) for k, v in out.items()}
        routes: dict[str, list[ConditionalEdge]] = {}
        for ce in g.conditional:
            routes.setdefault(ce.source, []).append(ce)
        self.routes_out = {k: tuple(v) for k, v in routes.items()}
        bar: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for srcs, t in g.barriers:
            for s in srcs:
                bar.setdefault(s, []).append((srcs, t))
        self.barrier_in = {k: tuple(v) for k, v in bar.items()}
        self.version = serde.fingerprint(describe_workflow(self))[:16]

    def invoke(self, input: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """Run to the end and return the final state (see ``tether.graph.invoke``)."""
        from tether.graph.invoke import invoke

        return invoke(self, input, **kw)

    async def ainvoke(self, input: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """``invoke`` for async code (see ``tether.graph.invoke``)."""
        from tether.graph.invoke import ainvoke

        return await ainvoke(self, input, **kw)

    def describe(self) -> dict[str, Any]:
        """The structure its ``version`` fingerprints (see ``tether.graph.version``)."""
        return describe_workflow(self)

    @property
    def nodes(self) -> dict[str, NodeSpec]:
        return self.graph.nodes

    @property
    def schema(self) -> StateSchema:
        return self.graph.state_schema

    def check(self) -> None:
        g = self.graph
        if not g.nodes:
            raise GraphDefinitionError(f"graph {g.name!r} has no nodes; add one with add_node()")
        known = set(g.nodes)

        def need(name: str, where: str, allow_start: bool = False, allow_end: bool = False) -> None:
            if name in known or (allow_start and name == START) or (allow_end and name == END):
                return
            hint = _suggest(name, known)
            raise GraphDefinitionError(f"{where} refers to unknown node {name!r}{hint}")

        for s, t in g.edges:
            need(s, f"edge {s!r} -> {t!r}", allow_start=True)
            need(t, f"edge {s!r} -> {t!r}", allow_end=True)
            if s == START and t == END:
                raise GraphDefinitionError("edge START -> END leaves nothing to run")
        for srcs, t in g.barriers:
            for s in srcs:
                need(s, f"join {list(srcs)} -> {t!r}")
            need(t, f"join {list(srcs)} -> {t!r}", allow_end=True)
        for spec in g.nodes.values():
            for t in spec.destinations or ():
                need(t, f"destinations of node {spec.name!r}", allow_end=True)
        for ce in g.conditional:
            need(ce.source, f"conditional edge from {ce.source!r}", allow_start=True)
            for t in ce.targets or ():
                need(t, f"conditional edge from {ce.source!r}", allow_end=True)
        if START not in self.static_out and START not in self.routes_out:
            raise GraphDefinitionError(
                f"graph {g.name!r} has no entry point; add g.add_edge(START, 'first_node')"
            )
        if self.replan_node is not None:
            need(self.replan_node, "replan_node")
        if self.max_replans < 0:
            raise GraphDefinitionError("max_replans must be >= 0")
        # Reachability: every node must be reachable from START.
        reach: set[str] = set()
        frontier = [START]
        dynamic = False
        while frontier:
            cur = frontier.pop()
            nxt = list(self.static_out.get(cur, ()))
            cur_spec = g.nodes.get(cur)
            if cur_spec is not None and cur_spec.destinations is not None:
                nxt.extend(cur_spec.destinations)
            for _srcs, t in self.barrier_in.get(cur, ()):
                nxt.append(t)
            for ce in self.routes_out.get(cur, ()):
                if ce.targets is None:
                    dynamic = True
                else:
                    nxt.extend(ce.targets)
            for spec_name in nxt:
                if spec_name != END and spec_name not in reach:
                    reach.add(spec_name)
                    frontier.append(spec_name)
        if self.replan_node is not None:
            reach.add(self.replan_node)
        unreachable = [n for n in g.nodes if n not in reach]
        if unreachable and not dynamic:
            raise GraphDefinitionError(
                f"graph {g.name!r}: node(s) {unreachable} cannot be reached from START; connect "
                "them with an edge, or declare the targets of your conditional edges"
            )


def _subgraph_marker(*_: Any) -> Any:
    raise RuntimeError("subgraph nodes are run by the runtime, not called")


def _suggest(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known nodes: {sorted(known)}"
