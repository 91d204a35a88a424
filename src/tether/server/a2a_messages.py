"""Which task and which question an A2A message is for: its messageId and its interrupt id.

**A first message is one task, however often it is delivered.** A message without a task id
starts a task, and the task's id is derived from the message's id (``first_task_id``: the
tenant of the request's key, the agent and the ``messageId``), so the same first message sent
again (a client retrying after a crash or a timeout, ``a2a_tool(idempotent=True)`` among them)
names the task the first delivery started: it is reported as it stands, never started twice.
A fingerprint of the first message's parts is kept in its run's metadata (``MESSAGE_KEY``), so
another message under the same ``messageId`` is refused (``redelivery_refusal``) instead of
being taken for the first one.

**An answer may name the interrupt it answers**: ``metadata.interrupt_id`` (``INTERRUPT_KEY``)
on the message, one of the ids the ``input-required`` status message lists. An answer naming
an interrupt that is no longer pending (answered already, by this client or another way) is
refused (``stale_interrupt``) instead of answering whatever the run asks now; an answer naming
none answers the pending interrupt, whichever it is.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from a2a.types import Message, Role, Task
from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]

from tether.core import serde
from tether.core.lifecycle import RunStatus
from tether.store.types import RunRecord

__all__ = [
    "INTERRUPT_KEY",
    "MESSAGE_KEY",
    "answered_interrupt",
    "fingerprint",
    "first_task_id",
    "received",
    "redelivery_refusal",
    "stale_interrupt",
]

INTERRUPT_KEY = "interrupt_id"
"""Message metadata: the id of the interrupt an answer answers (optional)."""
MESSAGE_KEY = "a2a_message"
"""Run metadata: the fingerprint of the first message, the one that started the run."""
FIRST_PREFIX = "a2a-"


def first_task_id(tenant: str | None, workflow: str, message_id: str) -> str:
    """The id of the task (and run) a first message starts: the same for the same message of
    the same tenant to the same agent, so a delivery of it again finds that task."""
    key = json.dumps([tenant, workflow, message_id], ensure_ascii=True)
    return FIRST_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32]


def fingerprint(message: Message) -> str:
    """What a message says (its parts), as a short hash: two deliveries of one message agree."""
    parts = [MessageToDict(p) for p in message.parts]
    try:
        return serde.fingerprint(parts)
    except (TypeError, ValueError):  # a value JSON cannot hold: the wire form then
        blob = b"".join(p.SerializeToString(deterministic=True) for p in message.parts)
        return hashlib.sha256(blob).hexdigest()[:32]


def received(task: Task, message: Message | None) -> bool:
    """Whether ``message`` (by its id) is in the task's history already: the SDK adds a
    message to it once it is handled, so one found there was received before."""
    if message is None or not message.message_id:
        return False
    return any(
        m.message_id == message.message_id and m.role == Role.ROLE_USER for m in task.history
    )


def redelivery_refusal(run: RunRecord | None, task: Task | None, message: Message) -> str | None:
    """Why ``message``, a first message whose ``messageId`` started a task already (``run``,
    ``task``), is not that first message again; None when it is."""
    started = run.run_id if run is not None else task.id if task is not None else "a task"
    kept = run.metadata.get(MESSAGE_KEY) if run is not None else None
    if not isinstance(kept, str) and task is not None:  # its run is not written yet
        first = [m for m in task.history if m.message_id == message.message_id]
        kept = fingerprint(first[0]) if first else None
    mid = message.message_id[:120]
    if isinstance(kept, str) and kept != fingerprint(message):
        return (
            f"messageId {mid!r} started task {started} with another message; a messageId names "
            "one message: send this one with a new messageId (to answer that task, also name "
            "its task id)"
        )
    context = task.context_id if task is not None else ""
    if message.context_id and context and message.context_id != context:
        return (
            f"messageId {mid!r} started task {started} in context {context[:120]!r}, not in "
            f"{message.context_id[:120]!r}; send this message with a new messageId"
        )
    return None


def answered_interrupt(message: Message | None) -> str | None:
    """The interrupt ``message`` says it answers (``metadata.interrupt_id``), if it names one."""
    if message is None or not message.HasField("metadata"):
        return None
    value: Any = MessageToDict(message.metadata).get(INTERRUPT_KEY)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidParamsError(
            message=f"metadata.{INTERRUPT_KEY} must be the id (a string) of the interrupt the "
            f"message answers, one the task's input-required status lists; got {value!r}"
        )
    return value


def stale_interrupt(run: RunRecord, interrupt_id: str) -> str | None:
    """Why an answer to ``interrupt_id`` cannot answer ``run`` now; None when the run waits
    for that interrupt."""
    if run.status is RunStatus.ESCALATED:
        interrupts = (run.escalation or {}).get("interrupts") or []
        ids = [str(i.get("id")) for i in interrupts if isinstance(i, dict)]
        if interrupt_id in ids:
            return None
        now = f"it waits for {ids} now" if ids else "it waits for no interrupt's answer now"
    else:
        now = f"its run is {run.status.value}, waiting for no answer"
    return (
        f"interrupt {interrupt_id[:120]!r} is no longer pending on task {run.run_id} ({now}): "
        "answered already, or asked at an earlier step. Read the task again (its "
        "input-required status lists the pending interrupts) and answer one of those"
    )
