"""A run's prompt as parts the context window manager treats differently.

``Conversation`` is a frozen, JSON-serialisable value a node keeps in its graph state
(``conv.to_state()`` / ``Conversation.from_state(...)``): the system prompt, the goal and the
pinned items (always sent verbatim), the session summary (L2: what compaction folded), and the
turns (L1: the active window, oldest first). ``messages()`` renders the prompt in that order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tether.core.errors import InvalidInputError
from tether.core.messages import Message

SUMMARY_HEADER = "Summary of the earlier conversation ({n} messages folded):\n"
DROPPED_NOTE = "[{n} earlier messages were dropped to fit the context window]"


def as_message(item: str | Message | Mapping[str, Any], role: str = "user") -> Message:
    """A message from text (``role``), a Message, or a ``{"role", "content"}`` dict."""
    if isinstance(item, Message):
        return item
    if isinstance(item, str):
        return Message.model_validate({"role": role, "content": item})
    if isinstance(item, Mapping):
        try:
            return Message.model_validate(dict(item))
        except ValueError as exc:
            raise InvalidInputError(f"not a chat message: {exc}") from None
    raise InvalidInputError(
        f"a message is text, a Message or a {{'role', 'content'}} dict, got {type(item).__name__}"
    )


class Conversation(BaseModel):
    """The prompt of a run, in parts. Immutable: every change returns a new conversation."""

    model_config = ConfigDict(frozen=True)

    system: tuple[Message, ...] = ()
    goal: Message | None = None
    """What the run is for; never compacted, never dropped."""
    pinned: dict[str, Message] = Field(default_factory=dict)
    """Items kept verbatim by key (``pin``/``unpin``), in pinning order."""
    summary: str = ""
    """The session summary: what compaction folded of older turns."""
    turns: tuple[Message, ...] = ()
    needed: frozenset[str] = frozenset()
    """Tool call ids whose results the plan still needs (``need``): never elided."""
    folded: int = 0
    """Messages folded into ``summary`` so far."""
    dropped: int = 0
    """Messages a sliding window dropped so far (the prompt says how many)."""
    elided: int = 0
    """Tool results replaced by a stub so far."""

    # -- building ------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        goal: str | Message,
        *,
        system: str | Message | Iterable[str | Message] = (),
        pinned: Mapping[str, str | Message] | None = None,
    ) -> Conversation:
        """A new conversation toward ``goal`` (text becomes a user message)."""
        if isinstance(system, str | Message):
            system = [system]
        return cls(
            system=tuple(as_message(s, "system") for s in system),
            goal=as_message(goal, "user"),
            pinned={k: as_message(v, "user") for k, v in (pinned or {}).items()},
        )

    def add(self, *messages: str | Message | Mapping[str, Any]) -> Conversation:
        """Append turns (text is a user message)."""
        new = tuple(as_message(m) for m in messages)
        return self.model_copy(update={"turns": self.turns + new})

    def pin(self, key: str, item: str | Message) -> Conversation:
        """Keep ``item`` verbatim in every prompt until ``unpin(key)``."""
        if not isinstance(key, str) or not key:
            raise InvalidInputError("a pinned item needs a non-empty string key")
        return self.model_copy(update={"pinned": {**self.pinned, key: as_message(item)}})

    def unpin(self, key: str) -> Conversation:
        return self.model_copy(
            update={"pinned": {k: v for k, v in self.pinned.items() if k != key}}
        )

    def need(self, *call_ids: str) -> Conversation:
        """Mark tool results (by tool call id) the plan still needs: they are never elided."""
        return self.model_copy(update={"needed": self.needed | set(call_ids)})

    def release(self, *call_ids: str) -> Conversation:
        """The plan no longer needs these tool results: they may be elided."""
        return self.model_copy(update={"needed": self.needed - set(call_ids)})

    # -- reading -------------------------------------------------------------------------
    def fixed(self) -> list[Message]:
        """What is always sent verbatim: system prompt, goal, pinned items."""
        goal = [self.goal] if self.goal is not None else []
        return [*self.system, *goal, *self.pinned.values()]

    def notes(self) -> list[Message]:
        """The session summary and the dropped-messages note, as system messages."""
        out: list[Message] = []
        if self.summary:
            out.append(Message.system(SUMMARY_HEADER.format(n=self.folded) + self.summary))
        if self.dropped:
            out.append(Message.system(DROPPED_NOTE.format(n=self.dropped)))
        return out

    def messages(self) -> list[Message]:
        """The prompt: system, goal, pinned, summary (and dropped note), then the turns."""
        return [*self.fixed(), *self.notes(), *self.turns]

    # -- persisting ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-ready form for a graph state field."""
        return self.model_dump(mode="json")

    @classmethod
    def from_state(cls, data: Conversation | Mapping[str, Any]) -> Conversation:
        if isinstance(data, Conversation):
            return data
        try:
            return cls.model_validate(dict(data))
        except ValueError as exc:
            raise InvalidInputError(f"not a saved Conversation: {exc}") from None


def units(turns: tuple[Message, ...]) -> list[tuple[int, int]]:
    """The turns as units that stay together, ``(start, end)`` spans: a message, with the
    tool results that answer an assistant message's tool calls kept with it (a provider
    refuses a tool result whose call is gone). A unit runs from the message holding a call to
    its result, whatever came in between (a user's message while the tool ran, the other
    results of parallel calls); a result whose call is not in ``turns`` joins the unit before
    it."""
    starts: list[int] = []
    ends: list[int] = []
    call_at: dict[str, int] = {}
    """Where each tool call was made: the index of its assistant message in ``turns``."""
    for i, m in enumerate(turns):
        if m.role == "tool" and starts:
            at = len(starts) - 1
            origin = call_at.get(m.tool_call_id) if m.tool_call_id is not None else None
            if origin is not None:
                at = bisect_right(starts, origin) - 1
            del starts[at + 1 :], ends[at + 1 :]
            ends[at] = i + 1
        else:
            starts.append(i)
            ends.append(i + 1)
            for call in m.tool_calls:
                call_at[call.id] = i
    return list(zip(starts, ends, strict=True))
