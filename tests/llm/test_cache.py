"""The agent-safe semantic cache with the real all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel

from tether.core.errors import ConfigurationError, InvalidInputError, ModelError
from tether.core.messages import Message, ToolSpec
from tether.llm.cache import CachedModel, SemanticCache, fingerprint
from tether.llm.embeddings import HashingEmbedder, MiniLMEmbedder, default_embedder
from tether.llm.fakes import FunctionModel, ScriptedModel, tool_call
from tether.llm.types import ModelRequest, ModelResponse, Usage
from tether.testing import FakeClock

SYSTEM = Message.system("You are the support assistant of Acme. Be brief.")
QUESTION = "How do I reset my password?"
PARAPHRASE = "How can I reset my password?"
UNRELATED = "What are your office opening hours on Sunday?"

SEARCH = ToolSpec(
    name="search_docs",
    description="Search the help center",
    parameters={"type": "object", "properties": {"q": {"type": "string"}}},
)
DELETE = ToolSpec(name="delete_account", description="Delete the account", scope="write")


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return default_embedder()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(minilm: MiniLMEmbedder, clock: FakeClock) -> SemanticCache:
    return SemanticCache(minilm, clock=clock)


def answering(prefix: str = "answer") -> FunctionModel:
    """Answers ``answer N: <question>`` so each real call is visible and counted."""

    def reply(request: ModelRequest) -> ModelResponse:
        n = len(model.requests)
        return ModelResponse(
            text=f"{prefix} {n}: {request.last_user_text}",
            usage=Usage(input_tokens=40, output_tokens=12),
        )

    model = FunctionModel(reply, name="support-bot")
    return model


def ask(question: str, *history: Message, system: Message = SYSTEM) -> list[Message]:
    return [system, *history, Message.user(question)]


async def test_a_paraphrase_hits_and_the_model_is_not_called(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    first = await model.chat(ask(QUESTION))
    assert first.metadata["cache"] == {"hit": False, "stored": True}
    assert first.usage.input_tokens == 40

    second = await model.chat(ask(PARAPHRASE))
    assert inner.calls == 1
    assert second.text == first.text == f"answer 1: {QUESTION}"
    note = second.metadata["cache"]
    assert note["hit"] is True
    assert 0.92 <= note["similarity"] <= 1.0
    assert note["age"] == 0.0
    assert note["usage"] == {"input_tokens": 40, "output_tokens": 12, "estimated": False}
    assert (second.usage.input_tokens, second.usage.output_tokens, second.cost) == (0, 0, 0.0)
    assert second.timing.latency > 0  # timed afresh, not the original call's timing
    stats = dataclasses.asdict(cache.stats)
    assert stats == {"hits": 1, "misses": 1, "stores": 1, "refused": 0, "expired": 0, "evicted": 0}


async def test_an_unrelated_question_misses(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask(QUESTION))
    other = await model.chat(ask(UNRELATED))
    assert inner.calls == 2
    assert other.text == f"answer 2: {UNRELATED}"
    assert other.metadata["cache"]["hit"] is False
    # close but different intent: same words, other meaning, still below 0.92
    await model.chat(ask("How do I change my email address?"))
    assert inner.calls == 3
    assert (cache.stats.hits, cache.stats.misses, len(cache)) == (0, 3, 3)


async def test_a_different_state_fingerprint_misses(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    alice = fingerprint({"user": "alice", "plan": "pro", "turn": 3}, ["user", "plan"])
    bob = fingerprint({"user": "bob", "plan": "pro"}, ["user", "plan"])
    await model.chat(ask(QUESTION), state_fingerprint=alice)
    assert (await model.chat(ask(QUESTION), state_fingerprint=bob)).text == f"answer 2: {QUESTION}"
    assert (await model.chat(ask(QUESTION))).text == f"answer 3: {QUESTION}"  # none at all
    again = await model.chat(ask(PARAPHRASE), state_fingerprint=alice)
    assert again.text == f"answer 1: {QUESTION}" and again.metadata["cache"]["hit"]
    assert inner.calls == 3


async def test_a_different_system_prompt_misses(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask(QUESTION))
    other = Message.system("You are the support assistant of Acme. Answer in French.")
    assert (await model.chat(ask(QUESTION, system=other))).text == f"answer 2: {QUESTION}"
    assert inner.calls == 2


async def test_a_different_history_misses(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    pro = (Message.user("I'm on the Pro plan."), Message.assistant("Noted."))
    free = (Message.user("I'm on the Free plan."), Message.assistant("Noted."))
    await model.chat(ask(QUESTION, *pro))
    assert (await model.chat(ask(QUESTION, *free))).text == f"answer 2: {QUESTION}"
    assert (await model.chat(ask(QUESTION))).text == f"answer 3: {QUESTION}"
    assert (await model.chat(ask(PARAPHRASE, *pro))).text == f"answer 1: {QUESTION}"
    assert inner.calls == 3


async def test_tool_results_after_the_question_are_part_of_the_scope(
    cache: SemanticCache,
) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    call = tool_call("search_docs", {"q": "reset"}, id="c1")

    def turn(question: str, result: str) -> list[Message]:
        return [
            *ask(question),
            Message.assistant("", (call,)),
            Message.tool("c1", result, name="search_docs"),
        ]

    await model.chat(turn(QUESTION, "Use the 'Forgot password' link."), tools=[SEARCH])
    changed = await model.chat(turn(QUESTION, "Password resets are disabled."), tools=[SEARCH])
    assert changed.metadata["cache"]["hit"] is False
    same = await model.chat(turn(PARAPHRASE, "Use the 'Forgot password' link."), tools=[SEARCH])
    assert same.metadata["cache"]["hit"] is True
    assert inner.calls == 2


async def test_a_different_tool_set_misses(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask(QUESTION), tools=[SEARCH])
    await model.chat(ask(QUESTION))  # no tools
    wider = SEARCH.model_copy(
        update={"parameters": {"type": "object", "properties": {"q": {}, "lang": {}}}}
    )
    await model.chat(ask(QUESTION), tools=[wider])  # same name, other schema
    await model.chat(ask(QUESTION), tools=[SEARCH, DELETE])  # one more tool
    assert inner.calls == 4
    assert (await model.chat(ask(PARAPHRASE), tools=[SEARCH])).text == f"answer 1: {QUESTION}"
    assert inner.calls == 4


async def test_other_request_settings_and_models_are_other_scopes(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask(QUESTION))
    await model.chat(ask(QUESTION), temperature=0.9)
    await model.chat(ask(QUESTION), response_format={"type": "object"})
    other_inner = answering("other")
    other_inner.model_name = "bigger-bot"
    shared = CachedModel(other_inner, cache)  # the same cache behind another model
    assert (await shared.chat(ask(QUESTION))).text == f"other 1: {QUESTION}"
    assert inner.calls == 3
    assert (await shared.chat(ask(PARAPHRASE))).metadata["cache"]["hit"]
    assert other_inner.calls == 1


async def test_entries_expire_after_the_ttl(minilm: MiniLMEmbedder, clock: FakeClock) -> None:
    cache = SemanticCache(minilm, ttl=60, clock=clock)
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask(QUESTION))
    clock.advance(59)
    hit = await model.chat(ask(PARAPHRASE))
    assert hit.metadata["cache"]["age"] == 59.0
    clock.advance(1)
    late = await model.chat(ask(PARAPHRASE))
    assert late.metadata["cache"] == {"hit": False, "stored": True}
    assert late.text == f"answer 2: {PARAPHRASE}"
    assert (cache.stats.expired, cache.stats.hits, inner.calls) == (1, 1, 2)
    clock.advance(3600)
    assert len(cache) == 0 and cache.stats.expired == 2


async def test_write_tool_answers_are_not_cached_unless_allowed(cache: SemanticCache) -> None:
    delete = tool_call("delete_account", {"confirm": True})
    search = tool_call("search_docs", {"q": "delete account"})
    inner = ScriptedModel([delete, delete, search, delete], name="agent")
    model = CachedModel(inner, cache)
    question = ask("Please delete my account")
    first = await model.chat(question, tools=[SEARCH, DELETE])
    assert first.tool_calls[0].name == "delete_account"
    assert first.metadata["cache"] == {
        "hit": False,
        "stored": False,
        "reason": "calls write tools ['delete_account']",
    }
    await model.chat(question, tools=[SEARCH, DELETE])
    assert inner.calls == 2 and len(cache) == 0

    # read-only tool calls are cached
    await model.chat(ask("Find the docs about deleting an account"), tools=[SEARCH, DELETE])
    assert len(cache) == 1
    again = await model.chat(ask("Find the docs about deleting accounts"), tools=[SEARCH, DELETE])
    assert again.metadata["cache"]["hit"] and again.tool_calls[0].name == "search_docs"
    assert inner.calls == 3

    # allowed: cached and served, but only to models that allow write tools too
    allowing = CachedModel(inner, cache, allow_write_tools=True)
    await allowing.chat(question, tools=[SEARCH, DELETE])
    assert allowing.cache.stats.stores == 2
    assert (await allowing.chat(question, tools=[SEARCH, DELETE])).metadata["cache"]["hit"]
    assert inner.calls == 4
    with pytest.raises(ModelError, match="no reply left"):  # not served: the model is asked
        await model.chat(question, tools=[SEARCH, DELETE])


async def test_truncated_empty_and_failed_answers_are_not_cached(cache: SemanticCache) -> None:
    inner = ScriptedModel(
        [
            ModelResponse(text="To reset your pass", finish_reason="length"),
            ModelResponse(text=""),
            ModelError("boom"),
            ModelResponse(text="not json"),
            "Use the Forgot password link.",
        ]
    )
    model = CachedModel(inner, cache)
    cut = await model.chat(ask(QUESTION))
    assert cut.metadata["cache"]["reason"] == "finish_reason 'length'"
    assert (await model.chat(ask(QUESTION))).metadata["cache"]["reason"] == "empty response"
    with pytest.raises(ModelError, match="boom"):
        await model.chat(ask(QUESTION))
    bad = await model.chat(ask(QUESTION), response_format={"type": "object"})
    assert "not the JSON" in bad.metadata["cache"]["reason"]
    good = await model.chat(ask(QUESTION))
    assert good.metadata["cache"]["stored"] and inner.calls == 5
    assert (await model.chat(ask(PARAPHRASE))).text == "Use the Forgot password link."
    assert dataclasses.asdict(cache.stats) == {
        "hits": 1,
        "misses": 5,
        "stores": 1,
        "refused": 3,
        "expired": 0,
        "evicted": 0,
    }
    assert cache.stats.hit_rate == pytest.approx(1 / 6)


async def test_least_recently_used_entries_are_evicted(
    minilm: MiniLMEmbedder, clock: FakeClock
) -> None:
    cache = SemanticCache(minilm, max_entries=2, clock=clock)
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask(QUESTION))
    await model.chat(ask(UNRELATED))
    await model.chat(ask(PARAPHRASE))  # a hit: the password entry is now the most recent
    await model.chat(ask("Do you ship to Canada?"))  # evicts the opening hours entry
    assert (len(cache), cache.stats.evicted) == (2, 1)
    assert (await model.chat(ask(PARAPHRASE))).metadata["cache"]["hit"]
    assert not (await model.chat(ask(UNRELATED))).metadata["cache"]["hit"]
    assert inner.calls == 4


async def test_streamed_hits_stream_the_cached_text(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    tokens: list[str] = []
    first = await model.chat(ask(QUESTION), on_token=tokens.append)
    assert "".join(tokens) == first.text and first.metadata["cache"]["stored"]
    tokens.clear()
    second = await model.chat(ask(PARAPHRASE), stream=True, on_token=tokens.append)
    assert "".join(tokens) == second.text == first.text
    assert second.metadata["cache"]["hit"] and second.timing.ttft is not None
    assert inner.calls == 1


async def test_hits_are_copies(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask(QUESTION))
    hit = await model.chat(ask(PARAPHRASE))
    hit.metadata["cache"]["similarity"] = -5
    hit.metadata["mine"] = True
    again = await model.chat(ask(PARAPHRASE))
    assert again.metadata["cache"]["similarity"] > 0.9 and "mine" not in again.metadata


async def test_requests_without_a_user_turn_are_passed_through(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    for _ in range(2):
        out = await model.chat([SYSTEM, Message.assistant("Hello! How can I help?")])
        assert out.metadata["cache"] == {"hit": False, "stored": False, "reason": "no user message"}
    assert inner.calls == 2 and len(cache) == 0


async def test_the_wrapper_looks_like_its_model(cache: SemanticCache) -> None:
    inner = answering()
    model = CachedModel(inner, cache)
    assert model.name == inner.name == "function:support-bot"
    assert model.exact_token_count is inner.exact_token_count is False
    assert model.count_tokens("abcdefgh") == inner.count_tokens("abcdefgh")
    assert (await model.chat(ask(QUESTION))).model == "function:support-bot"


def test_bad_settings_are_refused() -> None:
    embedder = HashingEmbedder()
    with pytest.raises(ConfigurationError, match="threshold"):
        SemanticCache(embedder, threshold=1.2)
    with pytest.raises(ConfigurationError, match="ttl must be > 0"):
        SemanticCache(embedder, ttl=0)
    with pytest.raises(ConfigurationError, match="ttl must be > 0"):
        SemanticCache(embedder, ttl=float("nan"))
    with pytest.raises(ConfigurationError, match="max_entries"):
        SemanticCache(embedder, max_entries=0)
    # settings read from the environment arrive as text: refused, not a TypeError later
    for bad in ({"threshold": "0.8"}, {"threshold": True}, {"ttl": "60"}, {"max_entries": "9"}):
        with pytest.raises(ConfigurationError):
            SemanticCache(embedder, **bad)  # type: ignore[arg-type]
    assert SemanticCache(embedder, ttl=None).ttl is None


class Prefs(BaseModel):
    lang: str


def test_fingerprint_is_stable_and_selective() -> None:
    a = fingerprint({"user": "alice", "prefs": Prefs(lang="fr"), "tags": {"b", "a"}, "n": 1})
    b = fingerprint({"n": 1, "tags": {"a", "b"}, "prefs": Prefs(lang="fr"), "user": "alice"})
    assert a == b and len(a) == 32
    assert fingerprint({"user": "alice", "n": 2}, ["user"]) == fingerprint({"user": "alice"})
    assert fingerprint({"user": "alice"}, ["user", "x"]) != fingerprint({"user": "alice"})
    assert fingerprint({"x": None}, ["x"]) != fingerprint({}, ["x"])
    assert fingerprint({"n": 1}) != fingerprint({"n": 2})
    # pinned: the same state gives the same fingerprint in every process and version
    assert fingerprint({"n": 1}) == "5814d1737c7667459d6418766876005b"
    with pytest.raises(InvalidInputError, match=r"keys=\[\.\.\.\]"):
        fingerprint({"conn": object()})
    assert fingerprint({"conn": object(), "user": "alice"}, ["user"])
    with pytest.raises(ConfigurationError, match="not the string"):
        fingerprint({"user": "alice"}, "user")
    with pytest.raises(InvalidInputError, match="as a mapping"):
        fingerprint(["alice"])  # type: ignore[arg-type]


async def test_the_hashing_embedder_works_as_a_cache_backend(clock: FakeClock) -> None:
    """Lexical only: the same words hit; a paraphrase with other words does not."""
    cache = SemanticCache(HashingEmbedder(), threshold=0.99, clock=clock)
    inner = answering()
    model = CachedModel(inner, cache)
    await model.chat(ask("reset my password"))
    assert (await model.chat(ask("Reset my password!"))).metadata["cache"]["hit"]
    assert not (await model.chat(ask("I forgot my login secret"))).metadata["cache"]["hit"]
    assert inner.calls == 2
