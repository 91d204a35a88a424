"""Build-time validation (GraphDefinitionError) and run-time typed errors: routes, updates, input."""

from __future__ import annotations

import re
import warnings
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Command,
    Graph,
    GraphDefinitionError,
    InvalidInputError,
    InvalidRouteError,
    InvalidUpdateError,
    Phase,
    RunFailedError,
    RunStatus,
    Runtime,
    Send,
    UserError,
    append,
)


class S(TypedDict):
    n: int
    log: Annotated[list[str], append]


def noop(state: Any) -> None:
    return None


def linear() -> Graph:
    g = Graph(S, name="lin")
    g.add_node("fetch", noop).add_node("process", noop)
    g.add_edge(START, "fetch").add_edge("fetch", "process").add_edge("process", END)
    return g


# -- build time ----------------------------------------------------------------------------


def test_valid_graph_compiles() -> None:
    wf = linear().compile()
    assert wf.name == "lin"
    assert list(wf.nodes) == ["fetch", "process"]
    assert wf.order == {"fetch": 0, "process": 1}
    assert wf.static_out == {START: ("fetch",), "fetch": ("process",), "process": (END,)}


def test_default_name_comes_from_schema() -> None:
    g = Graph(S)
    g.add_node("a", noop).add_edge(START, "a")
    assert g.compile().name == "s"


def test_unknown_node_in_edge_suggests_a_close_name() -> None:
    g = linear()
    g.add_edge("fetch", "procss")
    with pytest.raises(
        GraphDefinitionError,
        match=r"edge 'fetch' -> 'procss' refers to unknown node 'procss' \(did you mean 'process'\?\)",
    ):
        g.compile()


def test_unknown_node_without_close_match_lists_known_nodes() -> None:
    g = linear()
    g.add_edge("zzzzzz", "fetch")
    with pytest.raises(GraphDefinitionError, match=r"known nodes: \['fetch', 'process'\]"):
        g.compile()


def test_unknown_node_in_join_and_conditional_targets() -> None:
    g = linear()
    g.add_edge(["fetch", "proces"], "process")
    with pytest.raises(GraphDefinitionError, match=r"join \['fetch', 'proces'\] .*did you mean"):
        g.compile()
    g = linear()
    g.add_conditional_edges("fetch", noop, ["process", "fech"])
    with pytest.raises(
        GraphDefinitionError,
        match=r"conditional edge from 'fetch' refers to unknown node 'fech' \(did you mean 'fetch'",
    ):
        g.compile()


def test_unreachable_node() -> None:
    g = linear()
    g.add_node("orphan", noop).add_edge("orphan", END)
    with pytest.raises(
        GraphDefinitionError, match=r"node\(s\) \['orphan'\] cannot be reached from START"
    ):
        g.compile()


def test_node_reachable_through_declared_route_targets_or_replan_node() -> None:
    g = linear()
    g.add_node("side", noop)
    g.add_conditional_edges("process", noop, ["side", END])
    g.compile()  # reachable through the declared target
    g = linear()
    g.add_node("fixer", noop).add_edge("fixer", "process")
    g.compile(replan_node="fixer")  # reachable as the re-plan node
    g = linear()
    g.add_node("dyn", noop)
    g.add_conditional_edges("process", noop)  # undeclared targets: reachability unknown
    g.compile()


def test_no_entry_point() -> None:
    g = Graph(S, name="noentry")
    g.add_node("a", noop).add_edge("a", END)
    with pytest.raises(
        GraphDefinitionError,
        match=r"graph 'noentry' has no entry point; add g.add_edge\(START, 'first_node'\)",
    ):
        g.compile()


def test_no_nodes() -> None:
    with pytest.raises(GraphDefinitionError, match="has no nodes"):
        Graph(S, name="empty").compile()


def test_duplicate_node() -> None:
    g = Graph(S)
    g.add_node("a", noop)
    with pytest.raises(GraphDefinitionError, match="node 'a' is already defined"):
        g.add_node("a", noop)


@pytest.mark.parametrize("name", ["", START, END, 3])
def test_invalid_node_name(name: Any) -> None:
    with pytest.raises(GraphDefinitionError, match="invalid node name"):
        Graph(S).add_node(name, noop)


@pytest.mark.parametrize("name", [3, "", "   ", ["w"]])
def test_a_workflow_name_is_a_non_empty_string(name: Any) -> None:
    """``Graph(S, name=3)`` was taken, and its runs recorded the workflow as the int 3."""
    with pytest.raises(GraphDefinitionError, match="workflow's name is a non-empty string"):
        Graph(S, name=name)


def test_near_miss_edges_are_refused_where_they_are_written() -> None:
    g = Graph(S)
    g.add_node("a", noop).add_node("bb", noop)
    # a list target was a TypeError ('unhashable type') at compile
    with pytest.raises(GraphDefinitionError, match=r"add_edge goes to one node, got \[.bb.\]"):
        g.add_edge("a", ["bb"])  # type: ignore[arg-type]
    # a string of targets was read as its letters: "unknown node 'b' (did you mean 'bb'?)"
    with pytest.raises(GraphDefinitionError, match=r"targets=\[.bb.\]"):
        g.add_conditional_edges("a", lambda s: "bb", "bb")


def test_node_with_three_arguments_is_rejected() -> None:
    def three(state: Any, ctx: Any, extra: Any) -> None:
        return None

    with pytest.raises(
        GraphDefinitionError,
        match=r"node 'x': a node function takes \(state\) or \(state, ctx\), "
        r"three takes 3 positional arguments",
    ):
        Graph(S).add_node("x", three)
    with pytest.raises(GraphDefinitionError, match="takes 0 positional arguments"):
        Graph(S).add_node("y", lambda: None)


def test_node_signatures_decide_what_is_passed() -> None:
    import functools

    def with_ctx(state: Any, ctx: Any) -> None:
        return None

    def optional_ctx(state: Any, ctx: Any = None) -> None:
        return None

    def extra_default(state: Any, ctx: Any, flag: bool = True) -> None:
        return None

    def star(*args: Any) -> None:
        return None

    class Callable_:
        async def __call__(self, state: Any) -> None:
            return None

    g = Graph(S)
    g.add_node("plain", noop).add_node("ctx", with_ctx).add_node("opt", optional_ctx)
    g.add_node("closure", lambda s, i=3: {"n": i})  # a closure default is never the ctx
    g.add_node("extra", extra_default).add_node("star", star)
    g.add_node("partial", functools.partial(with_ctx, {}))
    g.add_node("obj", Callable_())
    wants = {n: spec.wants_ctx for n, spec in g.nodes.items()}
    assert wants == {
        "plain": False,
        "ctx": True,
        "opt": True,
        "closure": False,
        "extra": True,
        "star": True,
        "partial": False,
        "obj": False,
    }
    assert g.nodes["obj"].is_async and not g.nodes["plain"].is_async
    with pytest.raises(GraphDefinitionError, match="takes 3 positional arguments"):
        Graph(S).add_node("x", lambda a, b, c, *rest: None)


async def test_closure_defaults_keep_their_values(rt: Runtime) -> None:
    g = Graph(S, name="closures")
    for i in range(3):
        g.add_node(f"n{i}", lambda s, i=i: {"log": f"n{i}"})
    g.add_edge(START, "n0").add_edge("n0", "n1").add_edge("n1", "n2")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.state == {"n": 0, "log": ["n0", "n1", "n2"]}


def test_non_callable_node() -> None:
    with pytest.raises(GraphDefinitionError, match="must be a callable or a Workflow"):
        Graph(S).add_node("x", 42)  # type: ignore[arg-type]


def test_unknown_phase() -> None:
    with pytest.raises(
        GraphDefinitionError,
        match=r"node 'x': unknown phase 'bogus'; use one of \['agent', 'planner', 'tool', "
        r"'validator'\]",
    ):
        Graph(S).add_node("x", noop, phase="bogus")
    g = Graph(S)
    g.add_node("t", noop, phase="tool")
    assert g.nodes["t"].phase is Phase.TOOL


def test_start_to_end() -> None:
    g = Graph(S)
    g.add_node("a", noop)
    g.add_edge(START, END).add_edge(START, "a")
    with pytest.raises(GraphDefinitionError, match="edge START -> END leaves nothing to run"):
        g.compile()


def test_bad_replan_settings() -> None:
    with pytest.raises(GraphDefinitionError, match="replan_node refers to unknown node 'fixr'"):
        linear().compile(replan_node="fixr")
    with pytest.raises(GraphDefinitionError, match="max_replans must be >= 0"):
        linear().compile(max_replans=-1)


def test_join_needs_sources_and_route_must_be_callable() -> None:
    with pytest.raises(GraphDefinitionError, match="at least one source"):
        Graph(S).add_edge([], "a")
    with pytest.raises(GraphDefinitionError, match="route for 'a' must be callable"):
        Graph(S).add_conditional_edges("a", "b")  # type: ignore[arg-type]


def test_bad_schema() -> None:
    class Empty(TypedDict):
        pass

    with pytest.raises(GraphDefinitionError, match="has no annotated fields"):
        Graph(Empty)

    class BadReducer(TypedDict):
        x: Annotated[list[int], "appendd"]

    with pytest.raises(GraphDefinitionError, match=r"field 'x': unknown reducer 'appendd'"):
        Graph(BadReducer)


def test_definition_errors_are_user_errors() -> None:
    assert issubclass(GraphDefinitionError, UserError)
    assert issubclass(GraphDefinitionError, ValueError)


# -- run time: routes --------------------------------------------------------------------


def routed(route: Any, targets: Any = None) -> Any:
    g = Graph(S, name="routed")
    g.add_node("a", lambda s: {"n": 1}).add_node("b", lambda s: {"log": "b"})
    g.add_node("c", lambda s: {"log": "c"})
    g.add_edge(START, "a").add_edge("b", END).add_edge("c", END)
    g.add_conditional_edges("a", route, targets)
    return g.compile()


async def failed_with(rt: Runtime, wf: Any, error: type[Exception], match: str) -> None:
    res = await rt.run(wf, {"n": 0})
    assert res.status is RunStatus.FAILED
    assert res.error is not None
    assert res.error["type"] == error.__name__
    assert match in res.error["message"]
    assert res.error["node"] == "a"
    assert res.error["step"] == 1
    with pytest.raises(RunFailedError, match=re.escape(match)):
        res.unwrap()
    # the run keeps its last committed state: the failing step was never committed
    assert res.step == 0
    assert await rt.get_state(res.run_id) == {"n": 0, "log": []}
    assert res.state == {"n": 0, "log": []}
    run = await rt.get_run(res.run_id)
    assert run.status is RunStatus.FAILED and run.error == res.error


async def test_route_ok(rt: Runtime) -> None:
    res = await rt.run(routed(lambda s: ["c", "b"], ["b", "c"]), {"n": 0})
    assert res.status is RunStatus.COMPLETED
    assert res.state == {"n": 1, "log": ["b", "c"]}  # declaration order, not route order


async def test_route_with_path_map(rt: Runtime) -> None:
    res = await rt.run(routed(lambda s: s["n"] > 0, {True: "c", False: "b"}), {"n": 0})
    assert res.state == {"n": 1, "log": ["c"]}
    await failed_with(
        rt,
        routed(lambda s: "maybe", {True: "c", False: "b"}),
        InvalidRouteError,
        "returned 'maybe', which is not in its path map",
    )


async def test_route_to_unknown_target(rt: Runtime) -> None:
    await failed_with(
        rt,
        routed(lambda s: "zzz"),
        InvalidRouteError,
        "route from 'a' returned unknown target 'zzz'; known nodes: ['a', 'b', 'c'] (or END)",
    )


async def test_route_to_undeclared_target(rt: Runtime) -> None:
    g = Graph(S, name="undeclared")
    g.add_node("a", lambda s: {"n": 1}).add_node("b", noop).add_node("c", noop)
    g.add_edge(START, "a").add_edge("b", "c")
    g.add_conditional_edges("a", lambda s: "c", ["b", END])
    await failed_with(
        rt,
        g.compile(),
        InvalidRouteError,
        "route from 'a' returned 'c', which is not among its declared targets ['b', '__end__']",
    )


async def test_route_returning_none(rt: Runtime) -> None:
    await failed_with(rt, routed(lambda s: None), InvalidRouteError, "route from 'a' returned None")


async def test_send_to_end_and_bad_command_goto(rt: Runtime) -> None:
    await failed_with(rt, routed(lambda s: Send(END, 1)), InvalidRouteError, "sent a Send to END")
    g = Graph(S, name="cmd")
    g.add_node("a", lambda s: Command(update={"n": 1}, goto="nowhere")).add_edge(START, "a")
    await failed_with(rt, g.compile(), InvalidRouteError, "unknown target 'nowhere'")


async def test_entry_route_error_raises_at_start(rt: Runtime) -> None:
    g = Graph(S, name="entry")
    g.add_node("a", noop)
    g.add_conditional_edges(START, lambda s: "nope")
    with pytest.raises(InvalidRouteError, match="unknown target 'nope'"):
        await rt.start(g.compile(), {"n": 0})


# -- run time: updates ---------------------------------------------------------------------


def writes(update: Any) -> Any:
    g = Graph(S, name="writes")
    g.add_node("a", lambda s: update).add_edge(START, "a")
    return g.compile()


async def test_unknown_key_update(rt: Runtime) -> None:
    await failed_with(
        rt,
        writes({"nn": 1}),
        InvalidUpdateError,
        "node 'a' wrote unknown state key 'nn'; the state schema S has ['log', 'n']",
    )


async def test_wrongly_typed_update(rt: Runtime) -> None:
    await failed_with(
        rt, writes({"n": "3"}), InvalidUpdateError, "node 'a' wrote 'n'='3' which does not fit int"
    )
    await failed_with(rt, writes({"log": [1]}), InvalidUpdateError, "node 'a' wrote 'log'=[1]")
    await failed_with(rt, writes({"n": True}), InvalidUpdateError, "does not fit int")


async def test_non_dict_update(rt: Runtime) -> None:
    await failed_with(
        rt,
        writes(["n", 1]),
        InvalidUpdateError,
        "node 'a' returned a list; a node must return a dict of state updates, a Command, or None",
    )


async def test_a_sync_node_returning_a_coroutine_is_told_to_await(rt: Runtime) -> None:
    """A plain function that calls an async one without awaiting it returns a coroutine."""

    async def fetch() -> dict[str, int]:
        return {"n": 1}

    g = Graph(S, name="unawaited")
    g.add_node("a", lambda s: fetch()).add_edge(START, "a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited"
        await failed_with(
            rt,
            g.compile(),
            InvalidUpdateError,
            "node 'a' returned a coroutine (an async function called without await?)",
        )


async def test_append_field_accepts_one_item_or_a_list(rt: Runtime) -> None:
    g = Graph(S, name="app")
    g.add_node("a", lambda s: {"log": "x"}).add_node("b", lambda s: {"log": ["y", "z"]})
    g.add_edge(START, "a").add_edge("a", "b")
    res = await rt.run(g.compile(), {"n": 0, "log": ["w"]})
    assert res.state == {"n": 0, "log": ["w", "x", "y", "z"]}


async def test_parallel_writes_to_a_replace_field_conflict(rt: Runtime) -> None:
    g = Graph(S, name="conflict")
    g.add_node("a", lambda s: {"n": 1}).add_node("b", lambda s: {"n": 2})
    g.add_edge(START, "a").add_edge(START, "b")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.status is RunStatus.FAILED
    assert res.error is not None
    assert res.error["type"] == "InvalidUpdateError"
    assert res.error["message"].startswith(
        "tasks '1:a:0' and '1:b:0' both wrote 'n' in the same step; give the field a reducer"
    )
    # nothing of the conflicting step is visible, in the result or in the store
    assert res.state == {"n": 0, "log": []}
    assert await rt.get_state(res.run_id) == {"n": 0, "log": []}


async def test_parallel_writes_to_a_reducer_field_combine(rt: Runtime) -> None:
    g = Graph(S, name="noconflict")
    g.add_node("a", lambda s: {"log": "a"}).add_node("b", lambda s: {"log": "b"})
    g.add_edge(START, "b").add_edge(START, "a")
    res = await rt.run(g.compile(), {"n": 0})
    assert res.state == {"n": 0, "log": ["a", "b"]}


# -- run time: input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"zz": 1}, "unknown state key 'zz'"),
        ({"n": "1"}, "'n'='1' which does not fit int"),
        ({"log": "x"}, "'log'='x' which does not fit"),
        ([("n", 1)], "run input must be a mapping of state fields, got list"),
        ("n=1", "run input must be a mapping of state fields, got str"),
    ],
)
async def test_bad_run_input(rt: Runtime, bad: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        await rt.start(linear().compile(), bad)
    assert await rt.list_runs() == []  # nothing was created


async def test_input_defaults_and_schema_free_graphs(rt: Runtime) -> None:
    class Defaults:
        n: int = 5
        tags: Annotated[list[str], append]

    g = Graph(Defaults, name="defaults")
    g.add_node("a", lambda s: {"tags": "t"}).add_edge(START, "a")
    res = await rt.run(g.compile())
    assert res.state == {"n": 5, "tags": ["t"]}

    free = Graph(name="free")
    free.add_node("a", lambda s: {"anything": s.get("x", 0) + 1}).add_edge(START, "a")
    res = await rt.run(free.compile(), {"x": 41})
    assert res.state == {"x": 41, "anything": 42}


# -- Command(goto) destinations ------------------------------------------------------------


def _goto_graph(target: str, destinations: list[str] | None) -> Graph:
    from tether import Command

    g = Graph(S, name="goto")
    g.add_node("a", lambda s: Command(update={"n": 1}, goto=target), destinations=destinations)
    g.add_node("b", lambda s: {"n": 2})
    g.add_edge(START, "a")
    return g


def test_a_node_reached_only_by_goto_is_reachable_when_declared() -> None:
    with pytest.raises(GraphDefinitionError, match="cannot be reached"):
        _goto_graph("b", None).compile()
    _goto_graph("b", ["b", END]).compile()


def test_declared_destinations_must_exist() -> None:
    with pytest.raises(GraphDefinitionError, match=r"destinations of node 'a'.*'zz'"):
        _goto_graph("b", ["b", "zz"]).compile()
    with pytest.raises(GraphDefinitionError, match="list of node names"):
        Graph(S).add_node("x", lambda s: None, destinations="b")  # type: ignore[arg-type]


async def test_goto_outside_declared_destinations_fails_the_run(rt: Runtime) -> None:
    g = _goto_graph("b", ["b"])
    g.add_node("c", lambda s: {"n": 3}).add_edge("b", "c")
    ok = await rt.run(g.compile(), {"n": 0})
    assert ok.state["n"] == 3
    bad = _goto_graph("c", ["b"])
    bad.add_node("c", lambda s: {"n": 3}).add_edge("b", "c")
    res = await rt.run(bad.compile(), {"n": 0})
    assert res.status is RunStatus.FAILED
    assert res.error is not None and res.error["type"] == "InvalidRouteError"
    assert "not among its declared targets ['b']" in res.error["message"]
