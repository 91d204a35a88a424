"""The step planner: a pure function from (graph, state, finished tasks) to the next tasks.

Deterministic: the same inputs always give the same tasks, in the same order, with the same ids
(``"{step}:{node}:{index}"``), which is what makes replay and crash recovery exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.core.errors import InvalidRouteError
from tether.core.ids import task_id
from tether.graph.builder import ConditionalEdge, Workflow
from tether.graph.state import check_kept
from tether.graph.types import END, START, Detour, Send


@dataclass(frozen=True, slots=True)
class Finished:
    """A task that finished in the step being planned from."""

    task_id: str
    node: str
    goto: tuple[Any, ...] = ()


def _route_targets(
    ce: ConditionalEdge, state: Mapping[str, Any], known: Mapping[str, Any]
) -> list[Any]:
    raw = ce.route(state)
    items: Sequence[Any]
    items = raw if isinstance(raw, list | tuple) else [raw]
    out: list[Any] = []
    for item in items:
        if ce.path_map is not None and not isinstance(item, Send):
            if item not in ce.path_map:
                raise InvalidRouteError(
                    f"route from {ce.source!r} returned {item!r}, which is not in its path map "
                    f"{sorted(map(str, ce.path_map))}"
                )
            item = ce.path_map[item]
        _check_target(item, ce.source, known, ce.targets)
        if isinstance(item, Send):  # kept in the checkpoint as the task's argument
            check_kept(item.arg, f"Send({item.node!r}) argument", f"route from {ce.source!r}")
        out.append(item)
    return out


def _check_target(
    item: Any, source: str, known: Mapping[str, Any], declared: tuple[str, ...] | None = None
) -> None:
    name = item.node if isinstance(item, Send) else item
    if item is None:
        raise InvalidRouteError(
            f"route from {source!r} returned None; return a node name, END, a list, or Send(...)"
        )
    if not isinstance(name, str) or (name != END and name not in known):
        raise InvalidRouteError(
            f"route from {source!r} returned unknown target {name!r}; "
            f"known nodes: {sorted(known)} (or END)"
        )
    if isinstance(item, Send) and name == END:
        raise InvalidRouteError(f"route from {source!r} sent a Send to END")
    if declared is not None and name not in declared and name != END:
        raise InvalidRouteError(
            f"route from {source!r} returned {name!r}, which is not among its declared "
            f"targets {list(declared)}"
        )


def plan_next(
    wf: Workflow,
    state: Mapping[str, Any],
    step: int,
    finished: Sequence[Finished],
    barriers: Mapping[str, Sequence[str]],
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Tasks for step ``step + 1`` and the updated join barriers.

    ``finished`` are the tasks of ``step`` in task order (use ``[Finished("", START)]`` to plan
    the entry step from the input). Plain targets are deduplicated and ordered by node
    declaration; ``Send`` targets follow, in the order they were emitted.
    """
    known = wf.nodes
    plain: set[str] = set()
    sends: list[Send] = []
    bars = {k: list(v) for k, v in barriers.items()}

    def take(item: Any) -> None:
        if isinstance(item, Send):
            sends.append(item)
        elif item != END:
            plain.add(item)

    for fin in finished:
        detours = [g.node for g in fin.goto if isinstance(g, Detour)]
        if detours:  # an interrupt timed out: its on_timeout node instead of the task's edges
            for t in detours:
                _check_target(t, fin.node, known, None)
                take(t)
            continue
        for t in wf.static_out.get(fin.node, ()):
            take(t)
        for ce in wf.routes_out.get(fin.node, ()):
            for t in _route_targets(ce, state, known):
                take(t)
        if fin.goto:
            spec = known.get(fin.node)
            declared = spec.destinations if spec is not None else None
            for t in fin.goto:
                _check_target(t, fin.node, known, declared)
                take(t)
        if fin.node == START:
            continue
        for srcs, target in wf.barrier_in.get(fin.node, ()):
            key = f"{'+'.join(srcs)}>{target}"
            got = bars.setdefault(key, [])
            if fin.node not in got:
                got.append(fin.node)
            if all(s in got for s in srcs):
                del bars[key]
                take(target)

    order = wf.order
    nxt_step = step + 1
    tasks: list[dict[str, Any]] = [
        {"id": task_id(nxt_step, n, 0), "node": n} for n in sorted(plain, key=order.__getitem__)
    ]
    counts: dict[str, int] = {n: 1 for n in plain}
    for s in sends:
        i = counts.get(s.node, 0)
        counts[s.node] = i + 1
        tasks.append({"id": task_id(nxt_step, s.node, i), "node": s.node, "arg": s.arg})
    return tasks, bars


def entry_tasks(wf: Workflow, state: Mapping[str, Any]) -> list[dict[str, Any]]:
    tasks, _ = plan_next(wf, state, 0, [Finished("", START)], {})
    return tasks
