"""One workflow as an A2A agent: the a2a-sdk ``AgentExecutor`` that runs it.

An A2A task is a tether run with the task's id as its run id. A first message starts the run
(its parts as the run's input, see ``a2a_parts``); the task is ``working`` while the run is
active and follows its lifecycle:

==========================  ==================================================================
run                         A2A task state
==========================  ==================================================================
RECEIVED ... VALIDATING     working (each lifecycle hop and each finished node is streamed
                            as a status update, its metadata saying which)
ESCALATED                   input-required (the interrupt's payload is the status message)
COMPLETED                   completed (the final state as the ``result`` artifact)
FAILED                      failed (the run's error as the status message)
CANCELLED                   canceled
==========================  ==================================================================

A follow-up message on an ``input-required`` task answers the run's interrupt (``resume``)
and the run goes on; one naming the interrupt it answers (``metadata.interrupt_id``) answers
that one or is refused when it is no longer pending. ``tasks/cancel`` cancels the run.

A first message's task id is derived from its ``messageId`` (``a2a_messages.first_task_id``,
given by the request handler of ``a2a_handler``), so the same first message delivered again
reports the task it started instead of starting another run.

The tasks of one A2A context are the runs of one thread (``a2a_thread``): a new message in a
context (no task id) starts a run that continues from the context's last completed task, as
``thread_id=`` does, so a conversation goes on turn after turn. While a task of the context is
still open (working, or waiting for input) a new task in it is rejected: answer or cancel that
task, or start another context.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from a2a.helpers import new_message, new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Task, TaskState
from a2a.utils.errors import InvalidParamsError, UnsupportedOperationError

from tether.core.errors import (
    IdempotencyConflictError,
    RunNotFoundError,
    RunStateError,
    TetherError,
)
from tether.core.lifecycle import ACTIVE, RunStatus
from tether.graph.builder import Workflow
from tether.graph.results import RunResult
from tether.graph.runtime import Runtime
from tether.server.a2a_messages import (
    MESSAGE_KEY,
    answered_interrupt,
    fingerprint,
    first_task_id,
    received,
    redelivery_refusal,
    stale_interrupt,
)
from tether.server.a2a_parts import (
    answer,
    ask_parts,
    failure_text,
    output_parts,
    result_id,
    run_input,
)
from tether.store.types import RunRecord

log = logging.getLogger("tether.server.a2a")

TENANT_KEY = "tether_tenant"
"""``ServerCallContext.state`` entry: the tenant of the request's API key (None: local)."""
CONTEXT_KEY = "a2a_context_id"
"""Run metadata: the A2A context the run's task belongs to."""


def a2a_thread(workflow: str, context_id: str) -> str:
    """The thread of an agent's A2A context: its tasks are turns of one conversation. Named
    by the workflow too (one context may talk to several agents of the server), hashed when
    that would pass the 200 characters a thread id may have."""
    name = f"a2a:{workflow}:{context_id}"
    if len(name) <= 200:
        return name
    digest = hashlib.sha256(f"{workflow}\0{context_id}".encode()).hexdigest()[:40]
    return f"a2a:{workflow[:120]}:{digest}"


class WorkflowAgentExecutor(AgentExecutor):
    def __init__(
        self,
        runtime: Runtime,
        workflow: Workflow,
        expect: Callable[[str], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.workflow = workflow
        self.expect = expect
        """Told the id of each task a first message starts, before its run exists (the task
        store's ``RunTaskStore.expect``)."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        updater = TaskUpdater(event_queue, task_id, context_id)
        message = context.message
        parts = list(message.parts) if message is not None else []
        current = context.current_task
        if current is not None and current.status.state in _TERMINAL:
            # its run settled while the SDK kept the task live (answered over the HTTP API,
            # say): as the SDK answers for a task it knows to be finished
            raise UnsupportedOperationError(
                message=f"task {current.id} is {TaskState.Name(current.status.state)} (its run "
                "settled); send a message without a task id to start a new task"
            )
        first = self._first(task_id, message, context)
        try:
            if current is None:
                if self.expect is not None:
                    self.expect(task_id)
                await event_queue.enqueue_event(
                    new_task(
                        task_id,
                        context_id,
                        TaskState.TASK_STATE_SUBMITTED,
                        history=[message] if message is not None else [],
                    )
                )
                await self._start(task_id, context_id, parts, context)
            elif first or received(current, message):
                # the same message again (a client retrying after a dropped connection or a
                # timeout): it started the task, or answered its question, already; doing it
                # again would start a second run, or answer the next question
                if first and message is not None:
                    await self._same_first(task_id, current, message)
                log.info("A2A task %s: a message it had already, not taken twice", task_id)
                await self._follow(task_id, updater)
                return
            else:
                await self._answer(task_id, parts, answered_interrupt(message))
        except TetherError as exc:  # bad input, a run that cannot be answered now...
            await updater.reject(self._say(updater, str(exc)))
            return
        await updater.start_work()
        await self._follow(task_id, updater)

    def _first(self, task_id: str, message: Message | None, context: RequestContext) -> bool:
        """Whether ``message`` is the first message of task ``task_id`` (the one that started
        it, or would): the task's id is the one its messageId gives."""
        if message is None or not message.message_id:
            return False
        tenant = _tenant(context)
        return task_id == first_task_id(tenant, self.workflow.name, message.message_id)

    async def _run(self, run_id: str) -> RunRecord | None:
        try:
            return await self.runtime.store.get_run(run_id)
        except RunNotFoundError:
            return None

    async def _same_first(self, task_id: str, current: Task | None, message: Message) -> None:
        """Refuse ``message`` if it is not the first message of ``task_id`` again, but another
        one under the same messageId (the request handler checks this first; here for a
        delivery that raced the first one)."""
        refusal = redelivery_refusal(await self._run(task_id), current, message)
        if refusal is not None:
            raise InvalidParamsError(message=refusal)

    async def _answer(self, run_id: str, parts: list[Any], interrupt_id: str | None) -> None:
        """Resume the run with the message's answer: to ``interrupt_id`` when the message names
        the interrupt it answers (refused when that one is no longer pending), else to the
        pending interrupt."""
        try:
            await self.runtime.resume(
                run_id, answer(parts), wait=False, actor="a2a", interrupt_id=interrupt_id
            )
        except RunStateError:
            # answered meanwhile (the request handler checked it was pending before)
            run = await self.runtime.store.get_run(run_id)
            refusal = stale_interrupt(run, interrupt_id) if interrupt_id is not None else None
            if refusal is not None:
                raise InvalidParamsError(message=refusal) from None
            raise

    async def _start(
        self, run_id: str, context_id: str, parts: list[Any], context: RequestContext
    ) -> None:
        tenant = _tenant(context)
        message = context.message
        meta: dict[str, Any] = {CONTEXT_KEY: context_id, "submitted_via": "a2a"}
        first = self._first(run_id, message, context)
        if first and message is not None:
            meta[MESSAGE_KEY] = fingerprint(message)
        try:
            await self.runtime.start(
                self.workflow,
                run_input(self.workflow, parts),
                run_id=run_id,
                metadata=meta,
                actor="a2a",
                tenant=tenant,
                thread_id=a2a_thread(self.workflow.name, context_id) if context_id else None,
            )
        except (IdempotencyConflictError, RunStateError) as exc:
            if first and message is not None and await self._run(run_id) is not None:
                # the run id is taken: a delivery of this very message raced this one (on
                # another server process) and started it; followed if it is the same message
                await self._same_first(run_id, None, message)
                return
            if isinstance(exc, IdempotencyConflictError):
                raise
            # the context's previous task is still open
            raise RunStateError(
                f"context {context_id[:80]!r} has a task still open: answer it (a message "
                "with its task id) or cancel it before starting the next task in this "
                f"context, or send the message in another context ({exc})"
            ) from None

    async def _follow(self, run_id: str, updater: TaskUpdater) -> None:
        """Stream the run's lifecycle as status updates until it settles, then its outcome."""
        seen: str | None = None
        async for ev in self.runtime.events(run_id):
            if ev.type == "node_finished":  # progress, live: which node just finished
                meta = {"tether_event": "node_finished", "node": ev.node, "step": ev.step}
                await updater.update_status(TaskState.TASK_STATE_WORKING, metadata=meta)
                continue
            if ev.type != "lifecycle":
                continue
            to = str(ev.data.get("to", ""))
            if to in _ACTIVE_NAMES and to != seen:
                seen = to
                await updater.update_status(
                    TaskState.TASK_STATE_WORKING, metadata={"tether_status": to, "seq": ev.seq}
                )
        await self._outcome(await self.runtime.wait(run_id), updater)

    async def _outcome(self, res: RunResult, updater: TaskUpdater) -> None:
        meta = {"tether_status": res.status.value, "run_id": res.run_id, "step": res.step}
        if res.status is RunStatus.COMPLETED:
            # the id the task store gives a completed run's result too (``a2a_tasks``): one
            # artifact, whichever of them the SDK read first
            await updater.add_artifact(
                output_parts(res.state), artifact_id=result_id(res.run_id), name="result"
            )
            await updater.update_status(TaskState.TASK_STATE_COMPLETED, metadata=meta)
        elif res.status is RunStatus.ESCALATED:
            msg = updater.new_agent_message(ask_parts(res.escalation))
            await updater.update_status(TaskState.TASK_STATE_INPUT_REQUIRED, msg, metadata=meta)
        elif res.status is RunStatus.FAILED:
            text = failure_text(res.error)
            await updater.update_status(
                TaskState.TASK_STATE_FAILED, self._say(updater, text), metadata=meta
            )
        else:
            await updater.update_status(TaskState.TASK_STATE_CANCELED, metadata=meta)

    @staticmethod
    def _say(updater: TaskUpdater, text: str) -> Message:
        return new_message(
            [new_text_part(text)], context_id=updater.context_id, task_id=updater.task_id
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        updater = TaskUpdater(event_queue, task_id, context_id)
        try:
            await self.runtime.cancel(task_id, reason="cancelled over A2A", actor="a2a")
        except TetherError as exc:
            log.info("A2A cancel of run %s: %s", task_id, exc)
        await updater.update_status(
            TaskState.TASK_STATE_CANCELED,
            new_text_message("cancelled", context_id=context_id, task_id=task_id),
        )


def _tenant(context: RequestContext) -> str | None:
    tenant = context.call_context.state.get(TENANT_KEY)
    return tenant if isinstance(tenant, str) else None


_ACTIVE_NAMES = frozenset(s.value for s in ACTIVE)
_TERMINAL = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)
