"""The Runtime is not a hub: the graph package's modules reach one another only through public
members (the Runtime through ``tether.graph.host.RunHost``), never ``other._private``."""

from __future__ import annotations

import ast
from pathlib import Path

import tether.graph
from tether.graph.host import RunHost
from tether.graph.runtime import Runtime

GRAPH = Path(tether.graph.__file__).parent

ALLOWED = {
    ("builder.py", "sys._getframe"),  # the standard library's, not ours
    ("threads.py", "schema._validated"),  # StateSchema's validation cache, a state-module pair
    # the executor runs a node inside its RunContext and drains what the node recorded
    ("executor.py", "ctx._interrupts"),
    ("executor.py", "ctx._calls"),
    ("executor.py", "ctx._emit"),
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
