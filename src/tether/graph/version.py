"""Workflow versions: a fingerprint of a workflow's structure, recorded with every run.

A run parked for a week must resume with the workflow it started with, not with another one that
took its name since. The version is a hash of the structure (state fields, nodes and their
function names, edges, routes), never of function bodies: fixing a bug inside a node keeps the
version, adding a node, renaming a function or changing a field's type changes it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from tether.core.errors import WorkflowVersionError

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.store.types import RunRecord

VERSION_KEY = "workflow_version"
"""Where a run's metadata records the version of the workflow it runs."""


def callable_text(fn: Any) -> str:
    """A function's qualified name (not its module, which differs between ``python app.py``
    and ``--app app.py:wf``); a partial names the function it wraps."""
    if isinstance(fn, functools.partial):
        return f"partial({callable_text(fn.func)})"
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else type(fn).__qualname__


def describe_workflow(wf: Workflow) -> dict[str, Any]:
    """The structure a workflow's version fingerprints, stable across processes: state fields
    (name, type, reducer), nodes (function qualname, phase, subgraph version, destinations),
    edges, joins, conditional routes and the re-plan node."""
    g = wf.graph
    nodes = {
        n: [
            spec.subgraph.version if spec.subgraph is not None else callable_text(spec.fn),
            spec.phase.value,
            sorted(spec.destinations) if spec.destinations is not None else None,
        ]
        for n, spec in g.nodes.items()
    }
    routes = [
        [
            ce.source,
            callable_text(ce.route),
            sorted(ce.targets) if ce.targets is not None else None,
            sorted([repr(k), v] for k, v in ce.path_map.items()) if ce.path_map else None,
        ]
        for ce in g.conditional
    ]
    routes.sort(key=repr)  # entries mix None and lists, which do not compare: sort by text
    return {
        "state": g.state_schema.describe(),
        "nodes": dict(sorted(nodes.items())),
        "edges": sorted(g.edges),
        "joins": sorted([sorted(srcs), t] for srcs, t in g.barriers),
        "routes": routes,
        "replan_node": wf.replan_node,
    }


def differences(a: Workflow, b: Workflow) -> list[str]:
    """Which parts of two workflows' structure differ (``["nodes", "edges"]``)."""
    da, db = describe_workflow(a), describe_workflow(b)
    return [k for k in da if da[k] != db.get(k)]


def check_run_version(run: RunRecord, wf: Workflow, *, allow_change: bool) -> str | None:
    """Refuse to continue ``run`` with a workflow whose structure differs from the one it
    started with. Returns the recorded version when it differs and ``allow_change`` lets it
    through (None when they match or the run predates versions)."""
    recorded = run.metadata.get(VERSION_KEY)
    if not recorded or recorded == wf.version:
        return None
    if allow_change:
        return str(recorded)
    raise WorkflowVersionError(
        f"run {run.run_id} started with version {recorded} of workflow {run.workflow!r}, but the "
        f"workflow registered under that name now is version {wf.version} (its nodes, edges, "
        "routes or state fields differ). Resume it with the code it started with, or, if the "
        "new structure can continue this run's state, resume with allow_version_change=True "
        "(CLI: --allow-version-change)",
        run_id=run.run_id,
        recorded=str(recorded),
        current=wf.version,
    )
