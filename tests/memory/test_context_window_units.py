"""Compaction never leaves a tool result without the call it answers, even when other messages
sit between the call and its result (a user's interjection, parallel calls answered late)."""

from __future__ import annotations

import pytest

from tether.core.errors import ContextBudgetError
from tether.core.messages import Message, ToolCall
from tether.llm import FunctionModel
from tether.llm.types import ModelRequest
from tether.memory.compaction import DropToolResults, SlidingWindow
from tether.memory.compaction_summary import Summarize
from tether.memory.context_window import ContextWindow
from tether.memory.conversation import Conversation, units


def _call(i: int) -> Message:
    return Message.assistant("", (ToolCall(id=f"c{i}", name="search", arguments={"q": i}),))


def _interleaved(n: int) -> Conversation:
    """Each call answered after a user message that came in while the tool ran."""
    conv = Conversation.start("Goal: find the cheapest flight to Lisbon.")
    for i in range(n):
        conv = conv.add(_call(i))
        conv = conv.add(Message.user(f"while you search: also check date {i} " + "please " * 8))
        conv = conv.add(Message.tool(f"c{i}", "fare found " * 20, name="search"))
    return conv


def _orphans(turns: tuple[Message, ...]) -> list[str | None]:
    calls = {c.id for m in turns for c in m.tool_calls}
    return [m.tool_call_id for m in turns if m.role == "tool" and m.tool_call_id not in calls]


def test_a_unit_runs_from_a_call_to_its_last_result() -> None:
    conv = _interleaved(2)
    assert units(conv.turns) == [(0, 3), (3, 6)]
    # two parallel calls, answered after a user message; an orphan result joins what precedes
    turns = (
        Message.user("hi"),
        Message.assistant("", (ToolCall(id="a", name="t"), ToolCall(id="b", name="t"))),
        Message.tool("a", "A"),
        Message.user("and?"),
        Message.tool("b", "B"),
        Message.user("thanks"),
        Message.tool("zz", "no call"),
    )
    assert units(turns) == [(0, 1), (1, 5), (5, 7)]


@pytest.mark.parametrize("keep_recent", [1, 2, 3, 5])
@pytest.mark.parametrize("limit", [300, 400, 500, 700, 900])
@pytest.mark.parametrize("policy", ["sliding", "summarize"])
async def test_compaction_keeps_each_tool_result_with_its_call(
    keep_recent: int, limit: int, policy: str
) -> None:
    def summarise(request: ModelRequest) -> str:
        return "The user wants fares for several dates."

    last = SlidingWindow() if policy == "sliding" else Summarize(FunctionModel(summarise))
    window = ContextWindow(
        None, limit=limit, keep_recent=keep_recent, policies=[DropToolResults(), last]
    )
    conv = Conversation.start("Goal: find the cheapest flight to Lisbon.")
    compacted = 0
    for i in range(30):  # fitted before each model call, as a run does
        conv = conv.add(_call(i))
        conv = conv.add(Message.user(f"while you search: also check date {i} " + "please " * 8))
        conv = conv.add(Message.tool(f"c{i}", "fare found " * 20, name="search"))
        fitted = await window.fit(conv)
        assert fitted.tokens <= window.budget
        assert _orphans(fitted.conversation.turns) == [], f"after call {i}"
        assert fitted.conversation.turns[-1] == conv.turns[-1]
        compacted += fitted.compacted
        conv = fitted.conversation
    assert compacted


async def test_compaction_stopped_short_is_not_blamed_on_the_latest_turn() -> None:
    """A long history fitted at once, which the summariser's folds per fit cannot bring under
    budget, used to be reported as "the latest turn is too large to send verbatim" though the
    latest turn was 110 tokens of a 400-token budget: the error now says what stopped short
    and what to do."""

    def summarise(request: ModelRequest) -> str:
        return "The user wants fares for several dates."

    policy = Summarize(FunctionModel(summarise), max_calls=2)
    window = ContextWindow(None, limit=400, keep_recent=1, policies=[policy])
    with pytest.raises(ContextBudgetError) as info:
        await window.fit(_interleaved(30))
    message = str(info.value)
    assert "latest turn" not in message and "max_calls" in message
    assert info.value.budget == 400 and info.value.tokens > 400
    # with a sliding window as the last resort the same history fits
    window = ContextWindow(None, limit=400, keep_recent=1, policies=[policy, SlidingWindow()])
    assert (await window.fit(_interleaved(30))).tokens <= 400
