"""One item given where a list belongs: refused by name with the fix, not a bare TypeError
(``'Workflow' object is not iterable``), nor a string's letters or a dict's keys as items."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, ConfigurationError, Graph, Runtime
from tether.governance import Governance, StutterGuard
from tether.llm import ScriptedModel
from tether.tools import ToolExecutor, tool


@tool(scope="read")
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


class S(TypedDict, total=False):
    n: int


g = Graph(S, name="listed")
g.add_node("a", lambda s: {}).add_edge(START, "a").add_edge("a", END)
wf = g.compile()


@pytest.mark.parametrize(
    ("make", "fix"),
    [
        (lambda: ToolExecutor(add), r"ToolExecutor\(tools\) takes a list, got one ToolContract"),
        (lambda: Governance(guards=StutterGuard()), r"guards=\[StutterGuard\(\)\]"),
        (lambda: Runtime("memory://", workflows=wf), r"takes a list, got one Workflow"),
        (
            lambda: ScriptedModel("hello"),
            r"not the string 'hello': ScriptedModel\(\['the reply'\]\)",
        ),
        (
            lambda: ScriptedModel({"tasks": []}),
            r"ScriptedModel\(replies\) takes a list, got one dict",
        ),
    ],
)
def test_one_item_where_a_list_belongs_is_refused(make: Any, fix: str) -> None:
    with pytest.raises(ConfigurationError, match=fix):
        make()


def test_lists_tuples_and_generators_are_taken() -> None:
    assert ToolExecutor((add,)).registry.get("add") is not None
    assert ScriptedModel(r for r in ["a", "b"]).replies == ["a", "b"]
    assert len(Governance(guards=[StutterGuard()]).guards) == 1
