"""Single-flight in the semantic cache: identical calls in flight at once ask the model once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tether.core.errors import ModelError
from tether.core.messages import Message, ToolSpec
from tether.llm.cache import CachedModel, SemanticCache
from tether.llm.embeddings import MiniLMEmbedder, default_embedder
from tether.llm.fakes import FunctionModel, Reply, tool_call
from tether.llm.types import ModelRequest, ModelResponse, Usage
from tether.testing import FakeClock

SYSTEM = Message.system("You are the support assistant of Acme. Be brief.")
QUESTION = [SYSTEM, Message.user("How do I reset my password?")]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return default_embedder()


@pytest.fixture
def cache(minilm: MiniLMEmbedder) -> SemanticCache:
    return SemanticCache(minilm, clock=FakeClock())


class Gated:
    """A model whose first ``gated`` calls block until ``release`` is set; counts calls. Each
    call answers ``answers[n]`` (the last one repeats), raising it when it is an exception."""

    def __init__(self, *answers: Reply, gated: int = 1) -> None:
        self.answers = answers or ("Use the 'Forgot password' link.",)
        self.gated, self.entered, self.release = gated, asyncio.Event(), asyncio.Event()
        self.model = FunctionModel(self.reply, name="support-bot")

    async def reply(self, request: ModelRequest) -> Reply:
        n = self.model.calls
        if n <= self.gated:
            self.entered.set()
            await self.release.wait()
        answer = self.answers[min(n, len(self.answers)) - 1]
        if isinstance(answer, str):
            return ModelResponse(text=answer, usage=Usage(input_tokens=30, output_tokens=9))
        return answer


async def settle() -> None:
    """Let every task run until it blocks (no thread work is pending in these tests)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def in_flight(model: CachedModel, gate: Gated, *asks: dict[str, Any]) -> list[Any]:
    """Start the first call, wait until it is inside the model, start the others, let them
    reach the cache, then let the model answer; returns results or exceptions."""
    first = asyncio.create_task(model.chat(QUESTION, **asks[0]))
    await asyncio.wait_for(gate.entered.wait(), 60)
    rest = [asyncio.create_task(model.chat(QUESTION, **a)) for a in asks[1:]]
    await settle()
    gate.release.set()
    return await asyncio.wait_for(asyncio.gather(first, *rest, return_exceptions=True), 60)


async def test_two_identical_calls_in_flight_ask_the_model_once(cache: SemanticCache) -> None:
    gate = Gated()
    model = CachedModel(gate.model, cache)
    first, second = await in_flight(model, gate, {}, {})
    assert gate.model.calls == 1
    assert isinstance(first, ModelResponse) and isinstance(second, ModelResponse)
    assert first.metadata["cache"] == {"hit": False, "stored": True}
    assert second.text == first.text == "Use the 'Forgot password' link."
    assert second.metadata["cache"] == {
        "hit": True,
        "similarity": 1.0,
        "age": 0.0,
        "usage": {"input_tokens": 30, "output_tokens": 9, "estimated": False},
        "slots": [],
    }
    assert (second.usage.input_tokens, second.usage.output_tokens, second.cost) == (0, 0, 0.0)
    assert (cache.stats.hits, cache.stats.misses, cache.stats.stores) == (1, 1, 1)


async def test_many_waiters_share_one_call(cache: SemanticCache) -> None:
    gate = Gated()
    model = CachedModel(gate.model, cache)
    results = await in_flight(model, gate, *[{}] * 6)
    assert gate.model.calls == 1
    assert [r.metadata["cache"]["hit"] for r in results] == [False] + [True] * 5


async def test_a_different_state_fingerprint_is_not_shared(cache: SemanticCache) -> None:
    gate = Gated(gated=2)
    model = CachedModel(gate.model, cache)
    alice, bob = await in_flight(
        model, gate, {"state_fingerprint": "alice"}, {"state_fingerprint": "bob"}
    )
    assert gate.model.calls == 2
    assert alice.metadata["cache"]["hit"] is False
    assert bob.metadata["cache"]["hit"] is False


async def test_other_wording_is_not_shared_while_in_flight(cache: SemanticCache) -> None:
    gate = Gated(gated=2)
    model = CachedModel(gate.model, cache)
    first = asyncio.create_task(model.chat(QUESTION))
    await gate.entered.wait()
    reworded = [SYSTEM, Message.user("How can I reset my password?")]  # a paraphrase
    second = asyncio.create_task(model.chat(reworded))
    await settle()
    gate.release.set()
    await asyncio.gather(first, second)
    assert gate.model.calls == 2  # only the exact same text waits; paraphrases hit afterwards


async def test_when_the_first_call_fails_the_waiter_calls_itself(cache: SemanticCache) -> None:
    gate = Gated(ModelError("boom"), "Use the 'Forgot password' link.")
    model = CachedModel(gate.model, cache)
    first, second = await in_flight(model, gate, {}, {})
    assert isinstance(first, ModelError)
    assert isinstance(second, ModelResponse)
    assert second.metadata["cache"] == {"hit": False, "stored": True}
    assert gate.model.calls == 2


async def test_a_refused_answer_is_not_shared(cache: SemanticCache) -> None:
    cut = ModelResponse(text="To reset your pass", finish_reason="length")
    gate = Gated(cut, "Use the 'Forgot password' link.")
    model = CachedModel(gate.model, cache)
    first, second = await in_flight(model, gate, {}, {})
    assert first.metadata["cache"]["reason"] == "finish_reason 'length'"
    assert second.text == "Use the 'Forgot password' link."
    assert gate.model.calls == 2


async def test_a_write_tool_answer_is_shared_only_with_callers_allowing_it(
    cache: SemanticCache,
) -> None:
    delete = ToolSpec(name="delete_account", description="Delete the account", scope="write")
    gate = Gated(
        ModelResponse(tool_calls=(tool_call("delete_account"),), finish_reason="tool_calls")
    )
    allowing = CachedModel(gate.model, cache, allow_write_tools=True)
    careful = CachedModel(gate.model, cache)
    first = asyncio.create_task(allowing.chat(QUESTION, tools=[delete]))
    await gate.entered.wait()
    others = [asyncio.create_task(m.chat(QUESTION, tools=[delete])) for m in (allowing, careful)]
    await settle()
    gate.release.set()
    led, shared, own = await asyncio.gather(first, *others)
    assert led.metadata["cache"]["stored"] and shared.metadata["cache"]["hit"]
    assert own.metadata["cache"]["hit"] is False
    assert gate.model.calls == 2


async def test_when_the_first_call_is_cancelled_the_waiter_calls_itself(
    cache: SemanticCache,
) -> None:
    gate = Gated()
    model = CachedModel(gate.model, cache)
    first = asyncio.create_task(model.chat(QUESTION))
    await gate.entered.wait()
    second = asyncio.create_task(model.chat(QUESTION))
    await settle()
    assert gate.model.calls == 1  # the second is waiting, not asking
    first.cancel()
    answer = await asyncio.wait_for(second, 60)  # not left hanging
    assert answer.metadata["cache"] == {"hit": False, "stored": True}
    assert gate.model.calls == 2
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_cancelled_waiter_does_not_disturb_the_others(cache: SemanticCache) -> None:
    gate = Gated()
    model = CachedModel(gate.model, cache)
    first = asyncio.create_task(model.chat(QUESTION))
    await gate.entered.wait()
    quitter, stayer = (asyncio.create_task(model.chat(QUESTION)) for _ in range(2))
    await settle()
    quitter.cancel()
    await settle()
    gate.release.set()
    led, shared = await asyncio.wait_for(asyncio.gather(first, stayer), 60)
    assert led.metadata["cache"]["stored"] and shared.metadata["cache"]["hit"]
    assert quitter.cancelled() and gate.model.calls == 1


async def test_a_stream_waits_for_a_call_in_flight_but_never_leads(cache: SemanticCache) -> None:
    gate = Gated(gated=2)
    model = CachedModel(gate.model, cache)
    tokens: list[str] = []
    first = asyncio.create_task(model.chat(QUESTION))
    await gate.entered.wait()
    streamed = asyncio.create_task(model.chat(QUESTION, on_token=tokens.append))
    await settle()
    gate.release.set()
    led, follower = await asyncio.gather(first, streamed)
    assert follower.metadata["cache"]["hit"] and "".join(tokens) == led.text
    assert gate.model.calls == 1

    # a streamed miss is not waited for: the identical call behind it asks the model too
    other = [SYSTEM, Message.user("Do you ship to Canada?")]
    gate.entered.clear()
    gate.release.clear()
    leader = asyncio.create_task(model.chat(other, stream=True))
    await gate.entered.wait()
    behind = asyncio.create_task(model.chat(other))
    await settle()
    assert gate.model.calls == 3
    gate.release.set()
    await asyncio.gather(leader, behind)
