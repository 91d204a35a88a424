"""The a2a-sdk request handler of one agent, with what tether adds before the SDK takes a message.

* A message without a task id gets the task id its ``messageId`` gives
  (``a2a_messages.first_task_id``, through the request context builder), so the task and its
  run have one id whichever delivery of the message arrives. When that task exists already,
  the message is a delivery of its first message again: it is checked to be the same message
  (another one under that messageId is refused with an ``InvalidParamsError``) and answered
  with the task: as it stands when it is finished (the SDK would refuse a message on it), else
  followed by the executor, which never takes it as an answer.
* A message answering a task that names the interrupt it answers (``metadata.interrupt_id``)
  is refused with an ``InvalidParamsError`` when that interrupt is no longer pending, before
  the SDK takes it: the task stays as it is, waiting for its answer. The executor passes the
  id on to ``Runtime.resume``, which checks it again under the run's lease.
* While an answer to a task is being taken (its request has not returned: the run goes on
  until it settles again), another message to that task (another messageId) is refused with
  an ``InvalidParamsError``: the SDK would queue it behind the first and run it once the run
  asked its next question, taking it as the answer to a question its sender never saw (or,
  once the task finished, drop it while telling its sender the task went on).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.agent_execution import RequestContext, SimpleRequestContextBuilder
from a2a.server.agent_execution.active_task import TERMINAL_TASK_STATES
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import Message, SendMessageRequest, Task
from a2a.utils.errors import InvalidParamsError
from a2a.utils.task import apply_history_length

from tether.core.lifecycle import FINISHED
from tether.server.a2a_executor import TENANT_KEY
from tether.server.a2a_messages import (
    answered_interrupt,
    first_task_id,
    received,
    redelivery_refusal,
    stale_interrupt,
)
from tether.server.a2a_tasks import RunTaskStore

__all__ = ["AgentRequestHandler", "FirstMessageIds"]


def _tenant(context: ServerCallContext) -> str | None:
    tenant = context.state.get(TENANT_KEY)
    return tenant if isinstance(tenant, str) else None


class FirstMessageIds(SimpleRequestContextBuilder):
    """The SDK's request contexts, a first message's task id derived from its messageId."""

    def __init__(self, workflow: str) -> None:
        super().__init__()
        self.workflow = workflow

    async def build(
        self,
        context: ServerCallContext,
        params: SendMessageRequest | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        task: Task | None = None,
    ) -> RequestContext:
        if params is not None and not task_id and not params.message.task_id:
            mid = params.message.message_id
            if mid:
                task_id = first_task_id(_tenant(context), self.workflow, mid)
        return await super().build(
            context=context, params=params, task_id=task_id, context_id=context_id, task=task
        )


class AgentRequestHandler(DefaultRequestHandler):
    """``DefaultRequestHandler`` over a ``RunTaskStore``, checking each message first (see the
    module doc)."""

    def __init__(self, *, task_store: RunTaskStore, **kwargs: Any) -> None:
        super().__init__(
            task_store=task_store,
            request_context_builder=FirstMessageIds(task_store.workflow),
            **kwargs,
        )
        self.tasks = task_store
        self._answering: dict[str, str] = {}
        """Task id -> the messageId of the answer being taken (its request in flight)."""

    async def _claim(self, msg: Message, context: ServerCallContext) -> str | None:
        """Hold task ``msg.task_id`` for this answer while it is taken; the task id held (the
        caller releases it), None when none is (a first message, the same message again, a
        task the caller cannot see or that is finished: the SDK answers those as ever)."""
        task_id, mid = msg.task_id, msg.message_id
        if not task_id or not mid or self._answering.get(task_id) == mid:
            return None
        task = await self.tasks.get(task_id, context)
        if task is None or task.status.state in TERMINAL_TASK_STATES:
            return None
        holder = self._answering.get(task_id)  # looked at again: the read above awaited
        if holder == mid:
            return None
        if holder is not None:
            raise InvalidParamsError(
                message=f"task {task_id} is being answered already (messageId {holder[:120]!r}); "
                "this message was not taken. Read the task (GetTask) once that answer is "
                "in: answer its next question if it asks one"
            )
        self._answering[task_id] = mid
        return task_id

    def _release(self, task_id: str | None, msg: Message) -> None:
        if task_id is not None and self._answering.get(task_id) == msg.message_id:
            del self._answering[task_id]

    async def _before(self, params: SendMessageRequest, context: ServerCallContext) -> Task | None:
        """Check ``params.message``; the task it started when it is a first message delivered
        again (the message then names that task), else None."""
        msg = params.message
        if msg.task_id:
            await self._check_answer(msg, context)
            return None
        if not msg.message_id:
            return None
        task_id = first_task_id(_tenant(context), self.tasks.workflow, msg.message_id)
        task = await self.tasks.get(task_id, context)
        if task is None:  # a new task
            return None
        refusal = redelivery_refusal(await self.tasks.run(task_id, context), task, msg)
        if refusal is not None:
            raise InvalidParamsError(message=refusal)
        msg.task_id = task_id
        msg.context_id = task.context_id
        return task

    async def _check_answer(self, msg: Message, context: ServerCallContext) -> None:
        interrupt_id = answered_interrupt(msg)
        if interrupt_id is None:
            return
        task = await self.tasks.get(msg.task_id, context)
        if task is None or received(task, msg):  # not found: the SDK says so; a retry: as ever
            return
        run = await self.tasks.run(msg.task_id, context)
        if run is None or run.status in FINISHED:  # the SDK refuses a message on it
            return
        refusal = stale_interrupt(run, interrupt_id)
        if refusal is not None:
            raise InvalidParamsError(message=refusal)

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Message | Task:
        task = await self._before(params, context)
        if task is not None and task.status.state in TERMINAL_TASK_STATES:
            return apply_history_length(task, params.configuration)
        held = await self._claim(params.message, context) if task is None else None
        try:
            sent: Message | Task = await super().on_message_send(params, context)
        finally:
            self._release(held, params.message)
        return sent

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        task = await self._before(params, context)
        if task is not None and task.status.state in TERMINAL_TASK_STATES:
            yield apply_history_length(task, params.configuration)
            return
        held = await self._claim(params.message, context) if task is None else None
        try:
            async for event in super().on_message_send_stream(params, context):
                yield event
        finally:
            self._release(held, params.message)
