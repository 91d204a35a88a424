"""The Runtime is not a hub: the graph package's modules reach one another only through public
members (the Runtime through ``tether.graph.host.RunHost``), never ``other._private``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, TypedDict

import pytest

import tether.graph
from tether import END, START, Graph, RunContext, Runtime
from tether.graph.host import RunHost

GRAPH = Path(tether.graph.__file__).parent

ALLOWED = {
    ("builder.py", "sys._getframe"),  # the standard library's, not ours
    ("threads.py", "schema._validated"),  # StateSchema's validation cache, a state-module pair
    # the executor runs a node inside its RunContext and drains what the node recorded
    ("executor.py", "ctx._interrupts"),
    ("executor.py", "ctx._calls"),
    ("executor.py", "ctx._emit"),
    ("executor.py", "ctx._host"),  # a subgraph node's child run is the host's to start
}
"""Cross-object private accesses that remain, each with its reason; anything else fails."""


def cross_object_private_access(source: str) -> list[tuple[int, str]]:
    """``x._name`` where ``x`` is not ``self``/``cls`` (dunders are not private)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_checker_sees_private_access_through_any_expression() -> None:
    src = "rt._tasks\nctx.runtime._run_subgraph(x)\nself._ok\nloop._transitions()\nx.__class__\n"
    assert [e for _, e in cross_object_private_access(src)] == [
        "rt._tasks",
        "ctx.runtime._run_subgraph",
        "loop._transitions",
    ]


def test_no_graph_module_touches_another_objects_private_members() -> None:
    bad = [
        f"{path.name}:{line}: {expr}"
        for path in sorted(GRAPH.glob("*.py"))
        for line, expr in cross_object_private_access(path.read_text())
        if (path.name, expr) not in ALLOWED
    ]
    assert not bad, "private access across objects (add it to RunHost or a public API):\n" + (
        "\n".join(bad)
    )


def test_runtime_implements_every_run_host_member() -> None:
    wanted = {n for n in vars(RunHost) if not n.startswith("_")}
    rt = Runtime("memory://", recover=False)
    missing = {n for n in wanted if not hasattr(rt, n)}
    assert not missing, f"Runtime lacks RunHost members: {missing}"


class _S(TypedDict, total=False):
    seen: dict[str, Any]


async def test_a_node_sees_ids_deps_and_the_journal_not_the_runtime_store_or_token() -> None:
    async def look(state: _S, ctx: RunContext) -> dict[str, Any]:
        hidden = {n: hasattr(ctx, n) for n in ("runtime", "store", "token")}
        with pytest.raises(TypeError):
            ctx.metadata["step_limit"] = 1  # type: ignore[index]
        done = await ctx.effect("once", lambda: "ok")
        return {
            "seen": {
                "hidden": hidden,
                "ids": [ctx.run_id, ctx.workflow, ctx.step, ctx.node, ctx.attempt],
                "deps": dict(ctx.deps),
                "effect": done,
                "limit": ctx.metadata["step_limit"],
            }
        }

    wf = Graph(_S, name="peek").add_node("look", look).add_edge(START, "look")
    wf = wf.add_edge("look", END).compile()
    async with Runtime("memory://", recover=False, deps={"k": 1}) as rt:
        res = await rt.run(wf, {}, run_id="r1", max_steps=7)
    seen = res.state["seen"]
    assert seen["hidden"] == {"runtime": False, "store": False, "token": False}
    assert seen["ids"] == ["r1", "peek", 1, "look", 1]
    assert seen["deps"] == {"k": 1}
    assert seen["effect"] == "ok"
    assert seen["limit"] == 7
