"""Static breakpoints: ``compile(interrupt_before=[...], interrupt_after=[...])``.

A run parks ESCALATED (``escalation["kind"] == "breakpoint"``) before a step that would run one
of the ``interrupt_before`` nodes, or right after a step that ran one of the ``interrupt_after``
nodes (that step is committed first). ``runtime.resume(run_id)``, without a value, goes on.

Everything a breakpoint needs lives in the store, so any process may resume it: the pause is the
run's escalation, and passing a "before" breakpoint records the step in the run's metadata
(``breakpoint_passed``), so the step is not stopped at again when it runs, even when it parks
once more on a node's own ``interrupt()`` and is resumed from there. An "after" breakpoint needs
no record: the step it follows is already committed.

Each node stopped at is listed in ``escalation["interrupts"]`` (``RunResult.interrupts``) with
the payload ``{"breakpoint": "before" | "after", "node": name, "step": n}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tether.core.errors import GraphDefinitionError, InvalidInputError

if TYPE_CHECKING:
    from tether.graph.builder import Graph, Workflow
    from tether.store.types import RunRecord

PASSED_KEY = "breakpoint_passed"
"""Run metadata: the step whose "before" breakpoint a resume let through."""


def breakpoint_nodes(graph: Graph, option: str, names: Sequence[str]) -> frozenset[str]:
    """Validate ``compile(interrupt_before=...)`` / ``interrupt_after``: a list of node names."""
    if isinstance(names, str):
        raise GraphDefinitionError(
            f"{option} must be a list of node names, not a string: {option}=[{names!r}]"
        )
    try:
        listed = list(names)
    except TypeError:
        raise GraphDefinitionError(
            f"{option} must be a list of node names, got {type(names).__name__}"
        ) from None
    for name in listed:
        if not isinstance(name, str) or name not in graph.nodes:
            known = sorted(graph.nodes)
            raise GraphDefinitionError(
                f"{option} names {name!r}, which is not a node of graph {graph.name!r}; "
                f"its nodes are {known} (START and END cannot be breakpoints)"
            )
    return frozenset(listed)


def stops_before(
    wf: Workflow, run: RunRecord, step: int, tasks: Iterable[Mapping[str, Any]]
) -> list[str]:
    """The nodes of ``step`` whose "before" breakpoint stops it (none once it was passed)."""
    if not wf.interrupt_before or run.metadata.get(PASSED_KEY) == step:
        return []
    return _hits(wf.interrupt_before, tasks)


def stops_after(wf: Workflow, tasks: Iterable[Mapping[str, Any]]) -> list[str]:
    """The nodes of a just-finished step that have an "after" breakpoint."""
    return _hits(wf.interrupt_after, tasks) if wf.interrupt_after else []


def _hits(names: frozenset[str], tasks: Iterable[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for t in tasks:
        node = t["node"]
        if node in names and node not in out:
            out.append(node)
    return out


def escalation(when: str, step: int, nodes: list[str]) -> dict[str, Any]:
    """The run's escalation while it waits at a breakpoint."""
    return {
        "kind": "breakpoint",
        "when": when,
        "nodes": list(nodes),
        "reason": f"breakpoint {when} {', '.join(nodes)}; resume the run to go on",
        "interrupts": [
            {
                "id": f"breakpoint:{when}:{step}:{n}",
                "node": n,
                "payload": {"breakpoint": when, "node": n, "step": step},
            }
            for n in nodes
        ],
    }


def resume_metadata(
    run: RunRecord, esc: Mapping[str, Any], value: Any, missing: Any
) -> dict[str, Any]:
    """What a resume records to go past the breakpoint ``run`` waits at."""
    if value is not missing and value is not None:
        raise InvalidInputError(
            f"run {run.run_id} waits at a breakpoint ({esc.get('reason', '')}), which takes no "
            "answer: resume it without a value. To change the state first, fork the run at its "
            "last step with a patch"
        )
    return {PASSED_KEY: int(esc["step"])} if esc.get("when") == "before" else {}
