"""What the A2A tests share: the user messages they send with the official a2a-sdk client, and
the services ``mount_a2a`` serves from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from a2a.helpers import new_text_part
from a2a.types import Message, Role

from tether.graph.builder import Workflow
from tether.graph.runtime import Runtime


def user_message(text: str, task_id: str | None = None, context_id: str | None = None) -> Message:
    """A text message from the user: a new task, or a follow-up of ``task_id``."""
    return Message(
        role=Role.ROLE_USER,
        parts=[new_text_part(text)],
        message_id=str(uuid.uuid4()),
        task_id=task_id,
        context_id=context_id,
    )


@dataclass
class Services:
    """What ``mount_a2a`` reads: the runtime and the workflows by name."""

    runtime: Runtime
    workflows: dict[str, Workflow] = field(default_factory=dict)
