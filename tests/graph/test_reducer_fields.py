"""Reducers are checked when the graph is built: the builtins max/min work as tether's
maximum/minimum, and a callable that is no reducer is refused naming the field."""

from __future__ import annotations

from typing import Annotated, TypedDict

import pytest

from tether import END, START, Graph, GraphDefinitionError, RunStatus, Runtime, Send, maximum


class Best(TypedDict, total=False):
    items: list[int]
    best: Annotated[int, max]
    worst: Annotated[int, min]


async def test_builtin_max_and_min_fields_fold_parallel_writes(rt: Runtime) -> None:
    g = Graph(Best, name="best")
    g.add_node("fan", lambda s: None)
    g.add_node("score", lambda x: {"best": x, "worst": x})
    g.add_edge(START, "fan")
    g.add_conditional_edges("fan", lambda s: [Send("score", i) for i in s["items"]], ["score"])
    g.add_edge("score", END)
    wf = g.compile()
    assert wf.schema.fields["best"].reducer is maximum
    res = await rt.run(wf, {"items": [3, 9, 1, 4]})
    assert res.status is RunStatus.COMPLETED, res.error
    assert (res.state["best"], res.state["worst"]) == (9, 1)
    assert res.record is not None and res.record.metadata["reducers"] == {
        "best": "max",
        "worst": "min",
    }


def test_a_callable_that_is_not_a_reducer_is_refused_at_build_time() -> None:
    class Bad(TypedDict, total=False):
        size: Annotated[int, lambda value: value]

    with pytest.raises(GraphDefinitionError, match=r"field 'size': reducer .* cannot be called"):
        Graph(Bad)
