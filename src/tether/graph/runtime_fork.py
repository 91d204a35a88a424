"""The Runtime's time travel: fork a run at a step, with a patch, into a new linked run.

``RunForks`` is mixed into ``tether.graph.runtime.Runtime``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from tether.core.ids import new_run_id as make_run_id
from tether.core.lifecycle import RunStatus
from tether.graph.builder import Workflow
from tether.graph.fork_checks import carry_over, check_fork_args, check_patch
from tether.graph.results import RunHandle
from tether.graph.threads import NOT_FORKED
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

if TYPE_CHECKING:
    from tether.graph.runtime import Runtime


class RunForks:
    """``fork``: continue a run from one of its steps as a new run; the parent is untouched."""

    store: RunStore
    max_steps: int

    if TYPE_CHECKING:

        async def _ensure_open(self) -> None: ...

        def workflow_for(self, run: RunRecord) -> Workflow: ...

        async def get_state(
            self, run_id: str, step: int | None = None, *, run: RunRecord | None = None
        ) -> dict[str, Any]: ...

        async def _create_run(
            self,
            wf: Workflow,
            rec: RunRecord,
            state: dict[str, Any],
            tasks: list[dict[str, Any]],
            *,
            received: str,
            planned: str,
            actor: str,
            execute: bool,
            barriers: Mapping[str, list[str]] | None = None,
            checkpoint_meta: dict[str, Any] | None = None,
        ) -> tuple[RunRecord, bool]: ...

    async def fork(
        self,
        run_id: str,
        step: int,
        patch: Mapping[str, Any] | None = None,
        *,
        new_run_id: str | None = None,
        max_steps: int | None = None,
        execute: bool = True,
        actor: str = "user",
    ) -> RunHandle:
        """A new run, linked to its parent, that continues from ``step`` with ``patch`` applied
        (each patched field is replaced). The parent's history is not touched. The fork runs
        the workflow registered now under the parent's workflow name: a parent of another
        version is carried over to it (``tether.graph.fork_checks``)."""
        step = check_fork_args(step, patch, new_run_id, max_steps, actor)
        patch = dict(patch or {})
        await self._ensure_open()
        parent = await self.store.get_run(run_id)
        wf = self.workflow_for(parent)
        src = await self.store.get_checkpoint(run_id, step)
        state = await self.get_state(run_id, step, run=parent)
        if patch:
            check_patch(wf, patch)
        left = carry_over(wf, parent, step, src, state, patch)
        state.update(patch)
        fork: dict[str, Any] = {"parent": run_id, "step": step, "patch": patch}
        if left:
            fork["left_behind"] = left
        rec = RunRecord(
            run_id=new_run_id or make_run_id(),
            workflow=wf.name,
            status=RunStatus.PLANNED,
            input=parent.input,
            step=step,
            parent_run_id=run_id,
            parent_step=step,
            queue=parent.queue,  # a fork stays in its parent's queue and tenant
            priority=parent.priority,
            tenant=parent.tenant,
            metadata={
                **{k: v for k, v in parent.metadata.items() if k not in NOT_FORKED},
                "replans": 0,
                "step_limit": step + (max_steps or self.max_steps),
                "fork": fork,
            },
        )
        created, _ = await self._create_run(
            wf,
            rec,
            state,
            src.next_tasks,
            received=f"fork of {run_id} at step {step}",
            planned="forked",
            actor=actor,
            execute=execute,
            barriers=src.barriers,
            checkpoint_meta={"forked_from": run_id},
        )
        return RunHandle(cast("Runtime", self), created.run_id)
