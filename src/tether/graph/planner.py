"""The step planner: a pure function from (graph, state, finished tasks) to the next tasks.

Deterministic: the same inputs always give the same tasks, in the same order, with the same ids
(``"{step}:{node}:{index}"``), which is what makes replay and crash recovery exact.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from tether.core.errors import InvalidRouteError
from tether.core.ids import task_id
from tether.graph.builder import ConditionalEdge, Workflow
from tether.graph.state import check_kept
from tether.graph.types import END, START, Detour, Send


class Finished(NamedTuple):
    """A task that finished in the step being planned from (a tuple: one is made per task at
    every step, and a frozen dataclass costs about three times as much to make)."""

    task_id: str
    node: str
    goto: tuple[Any, ...] = ()


Lone = tuple[tuple[str, ...], tuple[tuple[ConditionalEdge, dict[str, str]], ...]]
"""What a node's finished task leads to when it finished alone, with no ``goto`` and no join
waiting on it: its static targets (each once, in declaration order, END left out) and its
routes, each with the answers it gave so far that named one node (or END), checked."""

PlanMemo = dict[str, Lone | None]
"""``plan_next``'s memo for one workflow (its run loop keeps one): per node, its ``Lone`` plan,
or None where the node is in a join (planned in full every time). The planner is pure: these
depend on the workflow alone, and a route's answer is checked once per answer."""


_MANY = (list, tuple)
"""A route's answer that names several targets (a tuple of types: ``list | tuple`` would make
a union object at every call)."""


def _route_targets(
    ce: ConditionalEdge, state: Mapping[str, Any], known: Mapping[str, Any]
) -> Sequence[Any]:
    return _answer_targets(ce, ce.route(state), known)


def _answer_targets(ce: ConditionalEdge, raw: Any, known: Mapping[str, Any]) -> Sequence[Any]:
    if not isinstance(raw, _MANY):  # one target, the usual answer: no lists to build
        return (_route_target(ce, raw, known),)
    out: list[Any] = []
    for item in raw:  # a loop: a comprehension would make closure cells at every call
        out.append(_route_target(ce, item, known))
    return out


def _route_target(ce: ConditionalEdge, item: Any, known: Mapping[str, Any]) -> Any:
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
    return item


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
    memo: PlanMemo | None = None,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Tasks for step ``step + 1`` and the updated join barriers.

    ``finished`` are the tasks of ``step`` in task order (use ``[Finished("", START)]`` to plan
    the entry step from the input). Plain targets are deduplicated and ordered by node
    declaration; ``Send`` targets follow, in the order they were emitted. ``memo``: what an
    earlier call for the same workflow worked out (``PlanMemo``), the same answers sooner.
    """
    known = wf.nodes
    if memo is not None and not barriers and len(finished) == 1 and not finished[0].goto:
        node = finished[0].node
        lone = memo[node] if node in memo else memo.setdefault(node, _lone(wf, node))
        if lone is not None:  # one task, no join: its targets alone, as the loop below finds
            return _lone_tasks(wf, lone, state, step + 1, known), {}
    plain: set[str] = set()
    sends: list[Send] = []
    bars = {k: list(v) for k, v in barriers.items()} if barriers else {}

    for fin in finished:
        if fin.goto:
            detours = [g.node for g in fin.goto if isinstance(g, Detour)]
            if detours:  # an interrupt timed out: its on_timeout node instead of the task's edges
                for t in detours:
                    _check_target(t, fin.node, known, None)
                    _take(t, plain, sends)
                continue
        for t in wf.static_out.get(fin.node, ()):  # node names (or END), never a Send
            if t != END:
                plain.add(t)
        for ce in wf.routes_out.get(fin.node, ()):
            for t in _route_targets(ce, state, known):  # _take, inline: once a step
                if isinstance(t, Send):
                    sends.append(t)
                elif t != END:
                    plain.add(t)
        if fin.goto:
            spec = known.get(fin.node)
            declared = spec.destinations if spec is not None else None
            for t in fin.goto:
                _check_target(t, fin.node, known, declared)
                _take(t, plain, sends)
        if fin.node == START:
            continue
        for srcs, target in wf.barrier_in.get(fin.node, ()):
            key = f"{'+'.join(srcs)}>{target}"
            got = bars.setdefault(key, [])
            if fin.node not in got:
                got.append(fin.node)
            if _all_in(srcs, got):
                del bars[key]
                _take(target, plain, sends)

    names = sorted(plain, key=wf.order.__getitem__) if len(plain) > 1 else plain
    return _tasks(step + 1, names, sends), bars


def _tasks(step: int, names: Collection[str], sends: Sequence[Send]) -> list[dict[str, Any]]:
    """The tasks of ``step``: one per node of ``names`` (distinct, in order), then one per
    ``Send`` in emission order."""
    tasks: list[dict[str, Any]] = []
    for n in names:  # a loop: a comprehension here would make a closure cell at every call
        tasks.append({"id": task_id(step, n, 0), "node": n})
    if sends:
        counts: dict[str, int] = dict.fromkeys(names, 1)
        for s in sends:
            i = counts.get(s.node, 0)
            counts[s.node] = i + 1
            tasks.append({"id": task_id(step, s.node, i), "node": s.node, "arg": s.arg})
    return tasks


def _lone(wf: Workflow, node: str) -> Lone | None:
    """``node``'s ``Lone`` plan; None where a join waits on it."""
    if node == START or node in wf.barrier_in:
        return None
    static: list[str] = []
    for t in wf.static_out.get(node, ()):
        if t != END and t not in static:
            static.append(t)
    static.sort(key=wf.order.__getitem__)
    return tuple(static), tuple((ce, {}) for ce in wf.routes_out.get(node, ()))


def _lone_tasks(
    wf: Workflow, lone: Lone, state: Mapping[str, Any], step: int, known: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The tasks that follow a task of a ``Lone`` node that finished alone."""
    static, routes = lone
    if not routes:
        return _tasks(step, static, ())
    plain = set(static)
    sends: list[Send] = []
    for ce, answers in routes:
        raw = ce.route(state)
        if type(raw) is str:  # one node (or END) named: checked the first time it is given
            t = answers.get(raw)
            if t is None:
                t = answers[raw] = _route_target(ce, raw, known)
            if t != END:
                plain.add(t)
            continue
        for t in _answer_targets(ce, raw, known):
            if isinstance(t, Send):
                sends.append(t)
            elif t != END:
                plain.add(t)
    names = sorted(plain, key=wf.order.__getitem__) if len(plain) > 1 else plain
    return _tasks(step, names, sends)


def _all_in(srcs: Sequence[str], got: Sequence[str]) -> bool:
    return all(s in got for s in srcs)


def _take(item: Any, plain: set[str], sends: list[Send]) -> None:
    """A target of a finished task: a ``Send`` in emission order, a node once, END nothing."""
    if isinstance(item, Send):
        sends.append(item)
    elif item != END:
        plain.add(item)


def entry_tasks(wf: Workflow, state: Mapping[str, Any]) -> list[dict[str, Any]]:
    tasks, _ = plan_next(wf, state, 0, [Finished("", START)], {})
    return tasks
