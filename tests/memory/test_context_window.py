"""The context window manager: budget, threshold, policies, what always stays verbatim."""

from __future__ import annotations

import random

import pytest

from tether.core.errors import ConfigurationError, ContextBudgetError, ModelResponseError
from tether.core.messages import Message
from tether.llm import FunctionModel, ScriptedModel, tool_call
from tether.llm.types import ModelRequest
from tether.memory.compaction import DropToolResults, SlidingWindow
from tether.memory.compaction_summary import SUMMARY_MARKER, Summarize
from tether.memory.context_window import ContextWindow
from tether.memory.conversation import Conversation
from tether.memory.tokens import EstimateCounter, counter_for

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]


def summariser() -> FunctionModel:
    """Answers a summary request with a short deterministic summary of the new messages."""

    def fn(request: ModelRequest) -> str:
        assert request.messages[0].name == SUMMARY_MARKER
        ask = request.messages[-1].content
        lines = ask.split("New messages:\n", 1)[1].splitlines()
        return f"Earlier: {len(lines)} messages, first was {lines[0][:40]!r}."

    return FunctionModel(fn, name="summariser")


def sentence(rng: random.Random, lo: int = 5, hi: int = 60) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


async def test_500_turns_keep_goal_pinned_recent_and_stay_under_budget() -> None:
    rng = random.Random(7)
    model = summariser()
    window = ContextWindow(model, limit=1024, keep_recent=4)
    conv = Conversation.start(
        "Goal: plan the Lisbon offsite for 12 people in May.",
        system="You are a careful planner.",
        pinned={"budget": "The budget is 9,400 EUR, hard cap."},
    )
    compactions = 0
    for turn in range(500):
        if turn % 7 == 3:  # a tool round: call, result
            call = tool_call("search", {"q": f"q{turn}"})
            conv = conv.add(
                Message.assistant("", (call,)),
                Message.tool(call.id, sentence(rng, 40, 120), name="search"),
            )
        conv = conv.add(Message.user(f"turn {turn}: " + sentence(rng)))
        fitted = await window.fit(conv)
        conv = fitted.conversation
        compactions += fitted.compacted
        msgs = fitted.messages
        assert fitted.tokens <= window.budget
        assert fitted.tokens == window.counter.count_messages(msgs)
        assert msgs[0] == Message.system("You are a careful planner.")
        assert msgs[1].content == "Goal: plan the Lisbon offsite for 12 people in May."
        assert msgs[2].content == "The budget is 9,400 EUR, hard cap."
        assert msgs[-1].content.startswith(f"turn {turn}: ")  # the latest turn, verbatim
        reply = Message.assistant(f"ack {turn}")
        conv = conv.add(reply)
    assert compactions >= 10
    assert conv.summary.startswith("Earlier: ")
    assert conv.folded + len(conv.turns) == 500 * 2 + 2 * len(range(3, 500, 7))
    assert model.calls >= compactions
    # every summary request itself fits the budget
    counter = window.counter
    assert all(counter.count_messages(r.messages) <= window.budget for r in model.requests)


async def test_under_threshold_nothing_happens_and_over_it_reaches_target() -> None:
    model = summariser()
    window = ContextWindow(model, limit=1000, threshold=0.7, target=0.5, keep_recent=2)
    conv = Conversation.start("goal")
    while window.tokens(conv) <= 690:
        conv = conv.add("x " * 40)
    fitted = await window.fit(conv.model_copy(update={"turns": conv.turns[:-1]}))
    assert not fitted.compacted and model.calls == 0
    fitted = await window.fit(conv)
    assert fitted.compacted and fitted.actions == ("summarize",)
    assert fitted.before > 700 and fitted.tokens <= 500
    assert fitted.conversation.turns == conv.turns[-len(fitted.conversation.turns) :]
    assert len(fitted.conversation.turns) >= 2


async def test_sliding_window_drops_oldest_and_says_so() -> None:
    window = ContextWindow(limit=400, policies=[SlidingWindow()], keep_recent=2)
    conv = Conversation.start("goal text").add(*[f"message {i} " + "y " * 30 for i in range(20)])
    fitted = await window.fit(conv)
    kept = fitted.conversation.turns
    assert fitted.actions == ("sliding_window",)
    assert kept == conv.turns[-len(kept) :]
    assert fitted.conversation.dropped == 20 - len(kept)
    assert any("earlier messages were dropped" in m.content for m in fitted.messages)
    assert fitted.messages[0].content == "goal text"


async def test_drop_tool_results_elides_old_results_but_keeps_needed_ones() -> None:
    window = ContextWindow(limit=600, policies=[DropToolResults()], keep_recent=1)
    conv = Conversation.start("goal")
    calls = [tool_call("fetch", {"i": i}) for i in range(4)]
    for c in calls:
        conv = conv.add(Message.assistant("", (c,)), Message.tool(c.id, "z " * 400, name="fetch"))
    conv = conv.need(calls[0].id)
    fitted = await window.fit(conv.add("now what?"))
    results = [m for m in fitted.conversation.turns if m.role == "tool"]
    assert results[0].content == "z " * 400  # needed by the plan
    assert all(r.content.startswith("[tool result elided: fetch") for r in results[1:3])
    assert fitted.conversation.elided >= 2
    # tool calls keep their results next to them
    roles = [m.role for m in fitted.conversation.turns]
    assert roles[:2] == ["assistant", "tool"]


async def test_goal_and_pinned_over_budget_is_a_typed_error_not_a_drop() -> None:
    window = ContextWindow(limit=100, policies=[SlidingWindow()])
    conv = Conversation.start("goal " * 200)
    with pytest.raises(ContextBudgetError) as info:
        await window.fit(conv)
    assert info.value.budget == 100 and info.value.tokens > 100
    assert "goal" in str(info.value)
    pinned = Conversation.start("g", pinned={"spec": "w " * 300})
    with pytest.raises(ContextBudgetError):
        await window.fit(pinned)


async def test_latest_turn_too_large_raises_after_trying() -> None:
    window = ContextWindow(limit=200, policies=[SlidingWindow()], keep_recent=3)
    conv = Conversation.start("goal").add("a", "b", "huge " * 400)
    with pytest.raises(ContextBudgetError, match="latest turn is too large"):
        await window.fit(conv)


async def test_summariser_returning_nothing_drops_nothing() -> None:
    window = ContextWindow(ScriptedModel(["   "]), limit=300, keep_recent=1)
    conv = Conversation.start("goal").add(*["w " * 60 for _ in range(6)])
    with pytest.raises(ModelResponseError, match="empty summary"):
        await window.fit(conv)


async def test_bad_configuration_is_explained() -> None:
    with pytest.raises(ConfigurationError, match="limit="):
        ContextWindow(ScriptedModel([]))
    with pytest.raises(ConfigurationError, match="target"):
        ContextWindow(limit=1000, threshold=0.5, target=0.6)
    with pytest.raises(ConfigurationError, match="keep_recent"):
        ContextWindow(limit=1000, keep_recent=0)
    with pytest.raises(ConfigurationError, match="policy"):
        ContextWindow(limit=1000, policies=["nope"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="Model"):
        Summarize("not a model")  # type: ignore[arg-type]


async def test_conversation_round_trips_through_state() -> None:
    conv = Conversation.start("goal", system="sys", pinned={"k": "v"}).add("hi").need("c1")
    again = Conversation.from_state(conv.to_state())
    assert again == conv
    assert again.unpin("k").pinned == {}


def test_estimate_and_model_counters() -> None:
    est = EstimateCounter()
    assert not est.exact
    assert est.count_messages([Message.user("abcdefgh")]) == 3 + 4 + 2
    assert counter_for(ScriptedModel([])).exact is False
    assert type(counter_for(None)) is EstimateCounter
