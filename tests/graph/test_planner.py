"""The pure step planner (hypothesis): determinism, task ids, ordering, Sends, join barriers."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether import END, START, Graph, Send
from tether.core.errors import InvalidRouteError
from tether.graph.builder import Workflow
from tether.graph.planner import Finished, PlanMemo, entry_tasks, plan_next

NAMES = ["a", "b", "c", "d", "e", "f"]


def noop(state: Any) -> None:
    return None


@dataclass
class Spec:
    nodes: list[str]  # declaration order
    edges: list[tuple[str, str]]
    barriers: list[tuple[tuple[str, ...], str]]
    routes: dict[str, list[list[Any]]]  # source -> options; the route picks by state["x"]


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    nodes = draw(st.permutations(NAMES).map(lambda p: p[: draw(st.integers(1, len(NAMES)))]))
    node = st.sampled_from(nodes)
    target = st.one_of(node, st.just(END))
    edges = draw(st.lists(st.tuples(st.one_of(node, st.just(START)), target), max_size=10))
    edges.append((START, nodes[0]))
    barriers: list[tuple[tuple[str, ...], str]] = []
    if len(nodes) >= 2:
        raw = draw(
            st.lists(
                st.tuples(st.lists(node, min_size=2, max_size=3, unique=True), target),
                max_size=3,
            )
        )
        for srcs, t in raw:
            b = (tuple(srcs), t)
            if b not in barriers:
                barriers.append(b)
    item = st.one_of(target, st.builds(Send, node, st.integers(0, 99)))
    routes = draw(
        st.dictionaries(
            st.one_of(node, st.just(START)),
            st.lists(st.lists(item, max_size=3), min_size=1, max_size=3),
            max_size=3,
        )
    )
    return Spec(list(nodes), edges, barriers, routes)


def build(spec: Spec, asked: list[str] | None = None) -> Workflow:
    """``asked``: each route's source is appended to it when the route is called, and a route
    whose pick is one name answers the bare name (as most routes do), not a list of it."""
    g = Graph(name="prop")
    for n in spec.nodes:
        g.add_node(n, noop)
    for s, t in spec.edges:
        g.add_edge(s, t)
    for srcs, t in spec.barriers:
        g.add_edge(list(srcs), t)
    for src, opts in spec.routes.items():
        if asked is None:
            g.add_conditional_edges(src, lambda st_, opts=opts: list(opts[st_["x"] % len(opts)]))
            continue

        def route(st_: Any, src: str = src, opts: list[list[Any]] = opts) -> Any:
            asked.append(src)
            pick = opts[st_["x"] % len(opts)]
            return pick[0] if len(pick) == 1 and isinstance(pick[0], str) else list(pick)

        g.add_conditional_edges(src, route)
    return Workflow(g)  # uncompiled on purpose: random graphs need not be fully reachable


@st.composite
def finished_lists(draw: st.DrawFn, spec: Spec) -> list[Finished]:
    node = st.sampled_from(spec.nodes)
    goto = st.lists(st.one_of(node, st.just(END), st.builds(Send, node, st.integers())), max_size=3)
    picked = draw(st.lists(st.tuples(node, goto), max_size=5))
    return [Finished(f"s:{n}:{i}", n, tuple(g)) for i, (n, g) in enumerate(picked)]


def model(
    spec: Spec, state: dict[str, Any], finished: list[Finished], barriers: dict[str, list[str]]
) -> tuple[set[str], list[Send], dict[tuple[tuple[str, ...], str], set[str]], list[str]]:
    """Independent reference: plain targets, Sends in emission order, barrier progress."""
    plain: set[str] = set()
    sends: list[Send] = []
    fired: list[str] = []
    progress = {
        (srcs, t): set(barriers.get(f"{'+'.join(srcs)}>{t}", [])) for srcs, t in spec.barriers
    }

    def take(x: Any) -> None:
        if isinstance(x, Send):
            sends.append(x)
        elif x != END:
            plain.add(x)

    for fin in finished:
        for s, t in spec.edges:
            if s == fin.node:
                take(t)
        opts = spec.routes.get(fin.node)
        if opts is not None:
            for x in opts[state["x"] % len(opts)]:
                take(x)
        for x in fin.goto:
            take(x)
        if fin.node == START:
            continue
        for b in spec.barriers:
            if fin.node in b[0]:
                progress[b].add(fin.node)
                if progress[b] >= set(b[0]):
                    progress[b] = set()
                    fired.append(b[1])
                    take(b[1])
    return plain, sends, progress, fired


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_plan_next_matches_the_reference_model(data: st.DataObject) -> None:
    spec = data.draw(specs())
    wf = build(spec)
    state = {"x": data.draw(st.integers(0, 10))}
    step = data.draw(st.integers(0, 1000))
    finished = data.draw(finished_lists(spec))
    barriers: dict[str, list[str]] = {}
    before = copy.deepcopy(barriers)

    tasks, new_bars = plan_next(wf, state, step, finished, barriers)

    # deterministic: the same inputs give the same tasks and barriers
    again = plan_next(wf, state, step, copy.deepcopy(finished), copy.deepcopy(barriers))
    assert again == (tasks, new_bars)
    assert barriers == before  # the input barriers are not mutated

    plain, sends, progress, _ = model(spec, state, finished, barriers)
    plain_tasks = [t for t in tasks if "arg" not in t]
    send_tasks = [t for t in tasks if "arg" in t]
    # plain targets first, deduplicated, in node declaration order
    assert tasks[: len(plain_tasks)] == plain_tasks
    order = [n for n in spec.nodes if n in plain]
    assert [t["node"] for t in plain_tasks] == order
    assert [t["id"] for t in plain_tasks] == [f"{step + 1}:{n}:0" for n in order]
    # Sends follow, in emission order, each with its argument
    assert [(t["node"], t["arg"]) for t in send_tasks] == [(s.node, s.arg) for s in sends]
    # ids are unique and f"{step+1}:{node}:{i}" with i counting that node's tasks
    ids = [t["id"] for t in tasks]
    assert len(ids) == len(set(ids))
    seen: dict[str, int] = {}
    for t in tasks:
        i = seen.get(t["node"], 0)
        seen[t["node"]] = i + 1
        assert t["id"] == f"{step + 1}:{t['node']}:{i}"
    # END never becomes a task
    assert all(t["node"] in spec.nodes for t in tasks)
    # barrier progress that did not fire is carried over
    expected_bars = {f"{'+'.join(s)}>{t}": p for (s, t), p in progress.items() if p}
    assert {k: set(v) for k, v in new_bars.items()} == expected_bars


def _plan(wf: Workflow, *args: Any) -> Any:
    """``plan_next``'s answer, or the route error it raised."""
    try:
        return plan_next(wf, *args)
    except InvalidRouteError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_memo_plans_every_step_as_the_planner_does_without_one(data: st.DataObject) -> None:
    """The run loop keeps one ``PlanMemo`` over all its steps: whatever the graph (joins,
    Sends, routes answering one name or several, an unknown name, gotos), every step's tasks
    and barriers (or its refusal) are those planned without a memo, and each route is asked
    exactly as often."""
    spec = data.draw(specs())
    if data.draw(st.booleans()):  # a route that may answer a name the graph does not have
        src = data.draw(st.sampled_from(spec.nodes))
        spec.routes[src] = [["zz"], *spec.routes.get(src, [[END]])]
    asked: list[str] = []
    wf = build(spec, asked)
    memo: PlanMemo = {}
    bars: dict[str, list[str]] = {}
    routed = [n for n in spec.nodes if n in spec.routes] or spec.nodes
    for step in range(data.draw(st.integers(4, 12))):
        state = {"x": data.draw(st.integers(0, 10))}
        if data.draw(st.integers(0, 2)):  # one task, no goto: the memo's own path
            node = data.draw(st.sampled_from(routed if data.draw(st.booleans()) else spec.nodes))
            finished = [Finished(f"{step}:{node}:0", node)]
        else:
            finished = data.draw(finished_lists(spec))
        asked.clear()
        want = _plan(wf, state, step, finished, copy.deepcopy(bars))
        asked_without = list(asked)
        asked.clear()
        got = _plan(wf, state, step, finished, copy.deepcopy(bars), memo)
        assert got == want
        assert asked == asked_without
        if isinstance(want, tuple):
            bars = want[1]


def test_a_memo_keeps_refusing_a_route_answer_it_never_took() -> None:
    g = Graph(name="r")
    for n in ["b", "a", "c"]:
        g.add_node(n, noop)
    g.add_edge(START, "a").add_edge("a", "c").add_edge("a", END).add_edge("a", "c")
    g.add_conditional_edges("a", lambda s: s["to"], {"next": "b", "done": END, "c": "c"})
    wf = g.compile()
    memo: PlanMemo = {}
    fin = [Finished("1:a:0", "a")]
    b, c = {"id": "2:b:0", "node": "b"}, {"id": "2:c:0", "node": "c"}
    for _ in range(2):
        assert plan_next(wf, {"to": "next"}, 1, fin, {}, memo) == ([b, c], {})
        assert plan_next(wf, {"to": "done"}, 1, fin, {}, memo) == ([c], {})
        assert plan_next(wf, {"to": "c"}, 1, fin, {}, memo) == ([c], {})
        with pytest.raises(InvalidRouteError, match="not in its path map"):
            plan_next(wf, {"to": "b"}, 1, fin, {}, memo)  # a node's name, not a path map key
        with pytest.raises(InvalidRouteError, match="returned None"):
            plan_next(wf, {"to": None}, 1, fin, {}, memo)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 4),
    st.lists(st.lists(st.sampled_from(["s0", "s1", "s2", "s3", "x"]), max_size=4), max_size=8),
)
def test_join_fires_exactly_once_per_completion_across_steps(
    k: int, batches: list[list[str]]
) -> None:
    sources = [f"s{i}" for i in range(k)]
    g = Graph(name="join")
    for n in ["s0", "s1", "s2", "s3", "x", "j"]:
        g.add_node(n, noop)
    g.add_edge(START, "s0")
    g.add_edge(sources, "j")
    wf = Workflow(g)

    bars: dict[str, list[str]] = {}
    got: set[str] = set()
    fired_steps: list[int] = []
    expected_steps: list[int] = []
    for step, batch in enumerate(batches):
        fins = [Finished(f"{step}:{n}:{i}", n) for i, n in enumerate(batch)]
        tasks, bars = plan_next(wf, {}, step, fins, bars)
        joins = [t for t in tasks if t["node"] == "j"]
        assert len(joins) <= 1  # a join never runs twice in one step
        if joins:
            assert joins[0]["id"] == f"{step + 1}:j:0"
            fired_steps.append(step)
        for n in batch:
            if n in sources:
                got.add(n)
                if got >= set(sources):
                    expected_steps.append(step)
                    got = set()
        # the barrier's state is exactly the sources finished since it last fired
        key = f"{'+'.join(sources)}>j"
        assert set(bars.get(key, [])) == got
    # a join completed twice within one step (e.g. by Send fan-out tasks of its sources)
    # still runs once in the next step: plain targets are deduplicated
    assert fired_steps == sorted(set(expected_steps))


def test_join_across_steps_example() -> None:
    g = Graph(name="j")
    for n in ["a", "b", "j"]:
        g.add_node(n, noop)
    g.add_edge(START, "a").add_edge(START, "b").add_edge(["a", "b"], "j")
    wf = g.compile()
    tasks, bars = plan_next(wf, {}, 1, [Finished("1:a:0", "a")], {})
    assert tasks == [] and bars == {"a+b>j": ["a"]}
    tasks, bars = plan_next(wf, {}, 2, [Finished("2:b:0", "b")], bars)
    assert tasks == [{"id": "3:j:0", "node": "j"}] and bars == {}
    # finishing both in one step fires once
    tasks, bars = plan_next(wf, {}, 0, [Finished("1:a:0", "a"), Finished("1:b:0", "b")], {})
    assert tasks == [{"id": "1:j:0", "node": "j"}] and bars == {}


def test_sends_follow_plain_targets_with_counted_ids() -> None:
    g = Graph(name="fan")
    for n in ["work", "split", "merge"]:
        g.add_node(n, noop)
    g.add_edge(START, "split")
    g.add_conditional_edges(
        "split", lambda s: [Send("work", 1), "merge", Send("work", 2), Send("merge", 3), "work"]
    )
    wf = g.compile()
    tasks, _ = plan_next(wf, {}, 4, [Finished("4:split:0", "split")], {})
    assert tasks == [
        {"id": "5:work:0", "node": "work"},
        {"id": "5:merge:0", "node": "merge"},
        {"id": "5:work:1", "node": "work", "arg": 1},
        {"id": "5:work:2", "node": "work", "arg": 2},
        {"id": "5:merge:1", "node": "merge", "arg": 3},
    ]


def test_entry_tasks_and_start_is_not_a_barrier_source() -> None:
    g = Graph(name="entry")
    for n in ["b", "a"]:
        g.add_node(n, noop)
    g.add_edge(START, "a").add_edge(START, "b").add_edge(START, "a")
    g.add_conditional_edges(START, lambda s: [Send("a", s["v"])])
    wf = g.compile()
    assert entry_tasks(wf, {"v": 7}) == [
        {"id": "1:b:0", "node": "b"},
        {"id": "1:a:0", "node": "a"},
        {"id": "1:a:1", "node": "a", "arg": 7},
    ]


@pytest.mark.parametrize("step", [0, 41])
def test_routes_see_the_state(step: int) -> None:
    g = Graph(name="r")
    for n in ["lo", "hi"]:
        g.add_node(n, noop)
    g.add_edge(START, "lo")
    g.add_conditional_edges("lo", lambda s: "hi" if s["v"] > 5 else END, ["hi", END])
    wf = g.compile()
    fin = [Finished(f"{step}:lo:0", "lo")]
    assert plan_next(wf, {"v": 9}, step, fin, {})[0] == [{"id": f"{step + 1}:hi:0", "node": "hi"}]
    assert plan_next(wf, {"v": 1}, step, fin, {})[0] == []
