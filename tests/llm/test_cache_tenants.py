"""One semantic cache shared by a multi-tenant deployment never serves one tenant's answer to
another: the tenant of the run making the call is part of the cache scope."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, Runtime
from tether.core.messages import Message
from tether.llm.cache import CachedModel, SemanticCache
from tether.llm.embeddings import MiniLMEmbedder, default_embedder
from tether.llm.fakes import FunctionModel
from tether.llm.types import ModelRequest, ModelResponse, Usage
from tether.testing import FakeClock

SYSTEM = Message.system("You are the billing assistant. Answer from the account data.")


class S(TypedDict, total=False):
    question: str
    answer: str
    hit: bool


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return default_embedder()


async def test_runs_of_different_tenants_never_share_answers(minilm: MiniLMEmbedder) -> None:
    def reply(request: ModelRequest) -> ModelResponse:
        return ModelResponse(
            text=f"answer {len(model.requests)}", usage=Usage(input_tokens=20, output_tokens=4)
        )

    model = FunctionModel(reply, name="billing-bot")
    cached = CachedModel(model, SemanticCache(minilm, clock=FakeClock()))

    async def answer(state: S) -> dict[str, Any]:
        got = await cached.chat([SYSTEM, Message.user(state["question"])])
        return {"answer": got.text, "hit": got.metadata["cache"]["hit"]}

    graph = Graph(S, name="billing")
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer").add_edge("answer", END)
    wf = graph.compile()

    async def ask(tenant: str | None, question: str) -> tuple[str, bool]:
        done = await rt.run(wf, {"question": question}, tenant=tenant)
        return done.state["answer"], done.state["hit"]

    async with Runtime("memory://", workflows=[wf]) as rt:
        assert await ask("acme", "What is my current balance?") == ("answer 1", False)
        # the same question (and a paraphrase) from the same tenant: served from the cache
        assert await ask("acme", "What is my current balance?") == ("answer 1", True)
        assert await ask("acme", "What's my current balance?") == ("answer 1", True)
        # another tenant, and a run with no tenant, ask the model themselves
        assert await ask("globex", "What is my current balance?") == ("answer 2", False)
        assert await ask(None, "What is my current balance?") == ("answer 3", False)
        assert await ask("globex", "What's my current balance?") == ("answer 2", True)
        # a tenant whose name only looks like another's is another tenant
        assert await ask("ACME", "What is my current balance?") == ("answer 4", False)
    assert len(model.requests) == 4
    # outside a run the call is untenanted: it shares the untenanted run's answer
    outside = await cached.chat([SYSTEM, Message.user("What is my current balance?")])
    assert (outside.text, outside.metadata["cache"]["hit"]) == ("answer 3", True)


async def test_lookup_takes_the_tenant_directly(minilm: MiniLMEmbedder) -> None:
    cache = SemanticCache(minilm, clock=FakeClock())
    request = ModelRequest(messages=[SYSTEM, Message.user("Where is my invoice?")])
    found = await cache.lookup("bot", request, tenant="acme")
    assert await cache.store(found, ModelResponse(text="in your inbox")) is None
    assert (await cache.lookup("bot", request, tenant="acme")).response is not None
    assert (await cache.lookup("bot", request, tenant="globex")).response is None
    assert (await cache.lookup("bot", request)).response is None
