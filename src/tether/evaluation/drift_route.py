"""A self-correction route for drift, inside the graph: after a node that answers, a check node
compares the answer with the goal; under the threshold the run goes to a correcting node (a
re-plan, a critic), else on.

``add_drift_route(g, after="answer", on_drift="replan", goal="question", output="answer")``
adds the check node (phase ``validator``) and its routes. The check writes its verdict to a
state field (``drift`` by default, which the state schema must declare, e.g.
``drift: dict``) and puts a ``drift_flag`` event on the run when it finds drift; after
``max_corrections`` corrections the run goes on even if it still drifts (the flag stays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tether.core.errors import ConfigurationError
from tether.evaluation.drift import DriftCheck, DriftMonitor
from tether.evaluation.drift_runs import DRIFT_EVENT, Extract, extract
from tether.graph.builder import Graph
from tether.graph.context import RunContext, current_context
from tether.graph.types import END, Phase

Node = Callable[[dict[str, Any], RunContext], Any]


def drift_check(
    monitor: DriftMonitor,
    *,
    goal: Extract,
    output: Extract,
    field: str = "drift",
) -> Node:
    """A node comparing ``goal`` and ``output`` (field names of the state, or functions of it)
    and writing ``{field: {"similarity", "threshold", "drifted", "checks", "run_id"}}``. The
    checks are counted per run: a verdict another run left (the previous run of a thread) is
    not this run's, so a follow-up gets its own corrections."""
    if goal is None or output is None:
        raise ConfigurationError("drift_check needs goal= and output= (field names or functions)")

    async def check_drift_node(state: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        check = await monitor.check(extract(state, goal, ()), extract(state, output, ()))
        before = state.get(field) or {}
        if before.get("run_id") != ctx.run_id:  # an earlier run's verdict (a thread goes on)
            before = {}
        checks = int(before.get("checks", 0)) + 1
        verdict = {
            "similarity": check.similarity,
            "threshold": check.threshold,
            "drifted": check.drifted,
            "checks": checks,
            "corrections": int(before.get("corrections", 0)),
            "run_id": ctx.run_id,
        }
        if check.drifted:
            ctx.emit(
                DRIFT_EVENT,
                {"kind": "goal_output", "similarity": check.similarity,
                 "threshold": check.threshold, "checks": checks},
            )  # fmt: skip
        return {field: verdict}

    return check_drift_node


async def check_plan_drift(
    monitor: DriftMonitor, previous: Any, plan: Any, *, ctx: RunContext | None = None
) -> DriftCheck | None:
    """Inside a node, compare a new plan with the previous one (texts, or values shown as
    JSON; None when there was none): a plan that strays puts a ``drift_flag`` event (kind
    ``plan``) on the run. Returns the check (None without a previous plan)."""
    if previous is None:
        return None
    check = await monitor.check_plans([previous, plan])
    if check[0].drifted:
        (ctx or current_context()).emit(
            DRIFT_EVENT,
            {"kind": "plan", "similarity": check[0].similarity, "threshold": check[0].threshold},
        )
    return check[0]


def drift_router(
    on_drift: str, then: str, *, field: str = "drift", max_corrections: int = 1
) -> Callable[[dict[str, Any]], str]:
    """Route to ``on_drift`` while the last check drifted and fewer than ``max_corrections``
    corrections were taken, else to ``then``."""

    def route(state: dict[str, Any]) -> str:
        verdict = state.get(field) or {}
        if verdict.get("drifted") and verdict.get("checks", 0) <= max_corrections:
            return on_drift
        return then

    return route


def add_drift_route(
    graph: Graph,
    *,
    after: str,
    on_drift: str,
    goal: Extract,
    output: Extract,
    then: str = END,
    monitor: DriftMonitor | None = None,
    name: str = "drift_check",
    field: str = "drift",
    max_corrections: int = 1,
) -> Graph:
    """Put a drift check between ``after`` and ``then``: ``after -> name``, then ``name ->
    on_drift`` when the output drifted from the goal (at most ``max_corrections`` times),
    else ``name -> then``. ``after`` must have no other outgoing edge."""
    if max_corrections < 0:
        raise ConfigurationError(f"max_corrections must be >= 0, got {max_corrections}")
    fields = graph.state_schema.fields
    if fields and field not in fields:
        raise ConfigurationError(
            f"the drift check writes its verdict to the state field {field!r}, which the state "
            f"of {graph.name!r} does not declare: add `{field}: dict` to it, or pass field= "
            "naming one it has"
        )
    node = drift_check(monitor or DriftMonitor(), goal=goal, output=output, field=field)
    graph.add_node(name, node, phase=Phase.VALIDATOR)
    graph.add_edge(after, name)
    router = drift_router(on_drift, then, field=field, max_corrections=max_corrections)
    graph.add_conditional_edges(name, router, [on_drift, then])
    return graph
