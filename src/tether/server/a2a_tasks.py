"""A2A tasks read from tether runs: the a2a-sdk ``TaskStore`` behind each agent of ``mount_a2a``.

A task is the run with the task's id, and its state lives nowhere else: ``get`` reads the run
from tether's store and maps its status (``task_state``), its escalation (the ``input-required``
message), its error (the ``failed`` message) and, once it completed, its final state (the
``result`` artifact). So a task outlives a server restart, and it shows what happened to its run
however the run was answered: over A2A, the HTTP API or the CLI.

What the SDK saves while it serves a task (the messages of its history, the metadata of its
status updates) is kept in the store beside the run (``a2a_snapshots``: a bounded in-memory
cache over the store's flags) and laid under what the run says, so after a restart a task
still has its history. Tenants: a run of another tenant, or of another workflow, is not a task
of this agent.

Saving a ``canceled`` task whose run has not finished cancels the run: that is how the SDK
cancels a task no live executor holds (after a restart).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence

from a2a.helpers import new_artifact, new_text_part
from a2a.server.context import ServerCallContext
from a2a.server.tasks import TaskStore
from a2a.types import (
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Role,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import InvalidParamsError

from tether.core.errors import RunNotFoundError, TetherError
from tether.core.lifecycle import FINISHED, RunStatus
from tether.graph.runtime import Runtime
from tether.server.a2a_executor import CONTEXT_KEY, TENANT_KEY
from tether.server.a2a_parts import ask_parts, failure_text, output_parts, result_id
from tether.server.a2a_snapshots import TaskSnapshots
from tether.store.tenancy import visible
from tether.store.types import RunRecord

__all__ = ["CACHED_TASKS", "RunTaskStore", "task_state"]

CACHED_TASKS = 1024
"""Tasks whose SDK snapshot (history, status metadata) an agent keeps in memory."""
RESULT_ARTIFACT = "result"
LIST_SCAN = 200
"""Runs read per query while a task list filters by context or time..."""
LIST_CHUNKS = 25
"""...and queries at most per page (a sparse filter answers a short page and a token)."""

_STATES: dict[RunStatus, TaskState] = {
    RunStatus.RECEIVED: TaskState.TASK_STATE_SUBMITTED,
    RunStatus.PLANNED: TaskState.TASK_STATE_SUBMITTED,
    RunStatus.EXECUTING: TaskState.TASK_STATE_WORKING,
    RunStatus.WAITING_FOR_TOOL: TaskState.TASK_STATE_WORKING,
    RunStatus.VALIDATING: TaskState.TASK_STATE_WORKING,
    RunStatus.ESCALATED: TaskState.TASK_STATE_INPUT_REQUIRED,
    RunStatus.COMPLETED: TaskState.TASK_STATE_COMPLETED,
    RunStatus.FAILED: TaskState.TASK_STATE_FAILED,
    RunStatus.CANCELLED: TaskState.TASK_STATE_CANCELED,
}


def task_state(status: RunStatus) -> TaskState:
    """The A2A task state of a run in ``status``."""
    return _STATES[status]


def _statuses(state: TaskState) -> list[RunStatus]:
    return [s for s, t in _STATES.items() if t == state]


def _tenant(ctx: ServerCallContext) -> str | None:
    tenant = ctx.state.get(TENANT_KEY)
    return tenant if isinstance(tenant, str) else None


class RunTaskStore(TaskStore):
    """The tasks of one agent (workflow ``workflow``), read from ``runtime``'s store."""

    def __init__(self, runtime: Runtime, workflow: str, *, cached: int = CACHED_TASKS) -> None:
        self.runtime = runtime
        self.workflow = workflow
        self.cached = cached
        self.snapshots = TaskSnapshots(runtime.store, workflow, cached=cached)
        self._expected: OrderedDict[str, None] = OrderedDict()

    def expect(self, task_id: str) -> None:
        """A first message's task: its run is about to be created, and until the SDK saved
        the task it started with (its history: that message), ``get`` answers from the
        snapshot alone, so the SDK does not take the new run for a task it already had."""
        self._expected[task_id] = None
        while len(self._expected) > self.cached:
            self._expected.popitem(last=False)

    # -- the SDK's snapshots ------------------------------------------------------------------
    async def save(self, task: Task, context: ServerCallContext) -> None:
        self._expected.pop(task.id, None)
        await self.snapshots.save(task, _tenant(context))
        if task.status.state == TaskState.TASK_STATE_CANCELED:
            run = await self._run(task.id, context)
            if run is not None and run.status not in FINISHED:
                with contextlib.suppress(TetherError):  # settled meanwhile: the run says so
                    await self.runtime.cancel(task.id, reason="cancelled over A2A", actor="a2a")

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        """Forget the SDK's snapshot; the run stays (runs go by tether's retention)."""
        await self.snapshots.delete(task_id, _tenant(context))

    # -- tasks from runs ----------------------------------------------------------------------
    async def _run(self, task_id: str, context: ServerCallContext) -> RunRecord | None:
        try:
            run = await self.runtime.store.get_run(task_id)
        except RunNotFoundError:
            return None
        if run.workflow != self.workflow or not visible(run, _tenant(context)):
            return None
        return run

    async def run(self, task_id: str, context: ServerCallContext) -> RunRecord | None:
        """The run of task ``task_id``, if it is a task of this agent the caller may see."""
        return await self._run(task_id, context)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        tenant = _tenant(context)
        run = None if task_id in self._expected else await self._run(task_id, context)
        if run is None:  # a first message's task, saved before its run was created
            return self.snapshots.cached_copy(task_id, tenant)
        return await self.task_of(run, await self.snapshots.get(task_id, tenant))

    async def task_of(self, run: RunRecord, snapshot: Task | None = None) -> Task:
        """The task of ``run``: its state, message and result from the run, over ``snapshot``
        (what the SDK saved of it, if anything)."""
        task = Task()
        if snapshot is not None:
            task.CopyFrom(snapshot)
        task.id = run.run_id
        context_id = run.metadata.get(CONTEXT_KEY)
        task.context_id = context_id if isinstance(context_id, str) else run.run_id
        status = TaskStatus(state=task_state(run.status))
        status.timestamp.FromNanoseconds(int(run.updated_at * 1e9))
        parts = None
        if run.status is RunStatus.ESCALATED:
            parts = ask_parts(run.escalation)
        elif run.status is RunStatus.FAILED:
            parts = [new_text_part(failure_text(run.error))]
        if parts is not None:
            status.message.CopyFrom(
                Message(
                    role=Role.ROLE_AGENT,
                    parts=parts,
                    message_id=f"{run.run_id}:{run.status.value}:{run.step}",
                    task_id=run.run_id,
                    context_id=task.context_id,
                )
            )
        task.status.CopyFrom(status)
        if run.status is RunStatus.COMPLETED and not any(
            a.artifact_id == result_id(run.run_id) for a in task.artifacts
        ):
            state = await self.runtime.get_state(run.run_id, run=run)
            task.artifacts.append(
                new_artifact(
                    output_parts(state), RESULT_ARTIFACT, artifact_id=result_id(run.run_id)
                )
            )
        task.metadata.update(
            {"run_id": run.run_id, "workflow": run.workflow, "tether_status": run.status.value}
        )
        return task

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """This agent's tasks, newest run first; ``page_token`` is the last task of the
        previous page. Filters: ``context_id``, ``status``, ``status_timestamp_after``."""
        size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        statuses: Sequence[RunStatus] | None = None
        if params.status:
            statuses = _statuses(params.status)
            if not statuses:  # a state no run is in (rejected, auth-required)
                return ListTasksResponse(tasks=[], page_size=size, total_size=0)
        after = (
            params.status_timestamp_after.ToNanoseconds() / 1e9
            if params.HasField("status_timestamp_after")
            else None
        )
        filtered = bool(params.context_id) or after is not None
        chunk = LIST_SCAN if filtered else size + 1
        before = params.page_token or None
        found: list[RunRecord] = []
        last: str | None = None  # the last run looked at: the next page starts after it
        more = False
        for _ in range(LIST_CHUNKS):
            try:
                runs = await self.runtime.store.list_runs(
                    status=statuses,
                    workflow=self.workflow,
                    tenant=_tenant(context),
                    limit=chunk,
                    before=before,
                )
            except RunNotFoundError:
                raise InvalidParamsError(
                    message=f"invalid page token {params.page_token!r}: list from the start"
                ) from None
            for run in runs:
                if len(found) == size:
                    more = True
                    break
                last = run.run_id
                if params.context_id and run.metadata.get(CONTEXT_KEY) != params.context_id:
                    continue
                if after is not None and run.updated_at < after:
                    continue
                found.append(run)
            if more or len(runs) < chunk:
                break
            before = runs[-1].run_id
        else:  # looked at LIST_CHUNKS * LIST_SCAN runs: the page ends here, the next goes on
            more = last is not None
        tenant = _tenant(context)
        tasks = [
            await self.task_of(run, await self.snapshots.get(run.run_id, tenant)) for run in found
        ]
        return ListTasksResponse(
            tasks=tasks,
            next_page_token=last if more and last is not None else "",
            page_size=size,
            total_size=len(tasks) + (1 if more else 0),
        )
