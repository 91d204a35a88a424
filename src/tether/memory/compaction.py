"""Compaction policies: how a conversation over its threshold is made smaller.

Each policy works on the turns older than the most recent ``keep_recent`` units (a unit is a
message with the tool results that answer it) and stops as soon as the prompt is at or under
the plan's ``target`` tokens. The context window manager runs its policies in order:

- :class:`DropToolResults`: old tool results the plan no longer needs become a one-line stub
  (``Conversation.need`` keeps a result; a ``keep`` predicate may keep more);
- :class:`SlidingWindow`: the oldest units are dropped (the prompt says how many);
- :class:`~tether.memory.compaction_summary.Summarize`: the oldest units are folded into the
  session summary by a model call (journaled inside a run).

Nothing here drops the system prompt, the goal or the pinned items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tether.core.messages import Message
from tether.memory.conversation import Conversation, units
from tether.memory.tokens import TokenCounter

ELIDED = "[tool result elided: {name}, {n} tokens; the plan no longer needs it]"


@dataclass(frozen=True, slots=True)
class CompactionPlan:
    """What a policy aims for: ``target`` prompt tokens, keeping ``keep_recent`` units."""

    counter: TokenCounter
    target: int
    budget: int
    keep_recent: int

    def tokens(self, conv: Conversation) -> int:
        return self.counter.count_messages(conv.messages())

    def old_units(self, conv: Conversation) -> list[tuple[int, int]]:
        """The units a policy may touch: all but the ``keep_recent`` most recent."""
        spans = units(conv.turns)
        return spans[: max(0, len(spans) - self.keep_recent)]


@runtime_checkable
class CompactionPolicy(Protocol):
    """Makes ``conv`` smaller toward ``plan.target``; returns it unchanged when it cannot."""

    name: str

    async def compact(self, conv: Conversation, plan: CompactionPlan) -> Conversation: ...


class SlidingWindow:
    """Drop the oldest units until the prompt fits the target. No model call; what was dropped
    is gone from the prompt (the prompt carries a note of how many messages)."""

    name = "sliding_window"

    async def compact(self, conv: Conversation, plan: CompactionPlan) -> Conversation:
        over = plan.tokens(conv) - plan.target
        if over <= 0:
            return conv
        cut = 0
        for start, end in plan.old_units(conv):
            if over <= 0:
                break
            over -= sum(plan.counter.count_message(m) for m in conv.turns[start:end])
            cut = end
        if cut == 0:
            return conv
        return conv.model_copy(update={"turns": conv.turns[cut:], "dropped": conv.dropped + cut})


class DropToolResults:
    """Replace old tool results with a one-line stub, oldest first, until the prompt fits.

    A result is kept when its tool call id is in ``Conversation.needed`` (``conv.need(id)``),
    when ``keep(message)`` says so, or when it is among the ``keep_recent`` latest units. The
    stub names the tool and the size of what was removed, so the model knows it existed."""

    name = "drop_tool_results"

    def __init__(self, keep: Callable[[Message], bool] | None = None) -> None:
        self.keep = keep

    def _stub(self, m: Message, counter: TokenCounter) -> Message:
        n = counter.count_text(m.content)
        text = ELIDED.format(name=m.name or "tool", n=n)
        return m.model_copy(update={"content": text})

    def droppable(self, m: Message, conv: Conversation) -> bool:
        if m.role != "tool" or m.content.startswith("[tool result elided"):
            return False
        if m.tool_call_id is not None and m.tool_call_id in conv.needed:
            return False
        return not (self.keep is not None and self.keep(m))

    async def compact(self, conv: Conversation, plan: CompactionPlan) -> Conversation:
        over = plan.tokens(conv) - plan.target
        if over <= 0:
            return conv
        turns = list(conv.turns)
        elided = 0
        for start, end in plan.old_units(conv):
            for i in range(start, end):
                if over <= 0:
                    break
                m = turns[i]
                if not self.droppable(m, conv):
                    continue
                stub = self._stub(m, plan.counter)
                over -= plan.counter.count_message(m) - plan.counter.count_message(stub)
                turns[i] = stub
                elided += 1
        if not elided:
            return conv
        return conv.model_copy(update={"turns": tuple(turns), "elided": conv.elided + elided})
