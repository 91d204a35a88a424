"""What ``Runtime.fork`` checks before it creates the fork: its arguments, and whether the
workflow registered now can take up the parent's state at the fork's step.

A fork runs the workflow registered under the parent's name *now*: forking is how a run of an
older version of a workflow goes on with the new one (``tether runs upgrade`` says so when it
cannot move a run). The new structure must be able to run the step after the fork's step (its
nodes, the joins it is half-way through), else the fork is refused with WorkflowVersionError
before anything is written; fields the new state class no longer has are left behind (named in
``metadata["fork"]["left_behind"]``, the parent keeps them); and a value the new field type no
longer fits refuses the fork with InvalidInputError unless the patch replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tether.core.errors import InvalidInputError, WorkflowVersionError
from tether.graph.state import check_max_steps, check_run_id, check_text
from tether.graph.upgrade import structure_blockers
from tether.graph.version import VERSION_KEY
from tether.store.paging import whole_number

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.store.types import Checkpoint, RunRecord


def check_fork_args(
    step: Any, patch: Any, new_run_id: str | None, max_steps: Any, actor: str
) -> int:
    """Refuse what ``fork`` cannot use, before anything is read: ``step`` as an int."""
    whole = whole_number("step", step)
    if patch is not None and not isinstance(patch, Mapping):
        raise InvalidInputError(
            f"a fork patch must be a mapping of state fields, got {type(patch).__name__}"
        )
    check_max_steps(max_steps)
    check_text(new_run_id=new_run_id, actor=actor)
    check_run_id("new_run_id", new_run_id)
    return whole


def check_patch(wf: Workflow, patch: Mapping[str, Any]) -> None:
    try:
        wf.schema.check_update(dict(patch), "", replace_all=True, source="fork patch")
    except Exception as exc:
        raise InvalidInputError(str(exc)) from None


def carry_over(
    wf: Workflow,
    parent: RunRecord,
    step: int,
    cp: Checkpoint,
    state: dict[str, Any],
    patch: Mapping[str, Any],
) -> list[str]:
    """Fit the parent's ``state`` at ``step`` (checkpoint ``cp``) to ``wf`` when the parent ran
    another version of it: refuse a step the new structure cannot take up, drop the fields it
    no longer has (returned) and refuse values its types no longer fit (unless patched)."""
    recorded = parent.metadata.get(VERSION_KEY)
    if not recorded or recorded == wf.version:
        return []
    reasons = structure_blockers(wf, cp)
    if reasons:
        raise WorkflowVersionError(
            f"run {parent.run_id} ran version {recorded} of workflow {parent.workflow!r}, and "
            f"version {wf.version} registered now cannot go on from its step {step}: "
            f"{'; '.join(reasons)}. Fork it from a step whose next nodes the new version has "
            "(see `tether runs history`), or finish it with the code it started with",
            run_id=parent.run_id,
            recorded=str(recorded),
            current=wf.version,
        )
    schema = wf.schema
    left: list[str] = []
    if schema.schema is not None:
        left = sorted(n for n in state if n not in schema.fields)
        for name in left:
            del state[name]
    for name, value in state.items():
        problem = None if name in patch else schema.stored_value_problem(name, value)
        if problem is not None:
            raise InvalidInputError(
                f"run {parent.run_id} ran another version of workflow {parent.workflow!r}: at "
                f"step {step} its state holds {name!r} = {problem} (its type in version "
                f"{wf.version}, registered now); fork it with a patch that sets {name!r} to a "
                "value that fits"
            )
    return left
