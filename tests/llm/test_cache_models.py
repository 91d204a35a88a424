"""One semantic cache shared by models that share a name but not a server never serves one's
answer for the other: two ``OpenAICompatibleModel("llama")`` pointing at two servers (a legal
and a medical fine-tune, both served as "llama") are both ``openai-compatible:llama``, and before
the second was answered from the first's cache. The cache scope holds the model's ``identity``:
its name and where it is served (base URL, GGUF file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tether.llm.cache import CachedModel, SemanticCache
from tether.llm.embeddings import HashingEmbedder
from tether.llm.providers.local import LocalModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.wrappers import FallbackModel, ModelRetry, RetryingModel
from tether.testing import FakeClock

QUESTION = "What does clause 7 of the contract mean?"


def _server(answer: str, seen: list[str]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        message = {"role": "assistant", "content": answer}
        body: dict[str, Any] = {
            "id": "x",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3},
        }
        return httpx.Response(200, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _llama(host: str, answer: str, seen: list[str]) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        "llama", base_url=f"http://{host}:8000/v1", client=_server(answer, seen)
    )


async def test_models_of_one_name_on_two_servers_keep_their_own_answers() -> None:
    cache = SemanticCache(HashingEmbedder(), clock=FakeClock())
    seen: list[str] = []
    legal = _llama("legal", "the legal reading", seen)
    medical = _llama("medical", "the medical reading", seen)
    assert legal.name == medical.name  # the name alone cannot tell them apart
    first = await CachedModel(legal, cache).chat(QUESTION)
    second = await CachedModel(medical, cache).chat(QUESTION)
    assert (first.text, second.text) == ("the legal reading", "the medical reading")
    assert second.metadata["cache"]["hit"] is False
    assert len(seen) == 2  # each server answered its own caller
    # the same server, asked again through another instance or a wrapper, still hits
    again = await CachedModel(
        RetryingModel(_llama("legal", "never asked", seen), ModelRetry()), cache
    ).chat(QUESTION)
    assert again.text == "the legal reading" and again.metadata["cache"]["hit"] is True
    assert len(seen) == 2


def test_identity_names_where_a_model_is_served(tmp_path: Path) -> None:
    seen: list[str] = []
    a, b = _llama("a", "", seen), _llama("b", "", seen)
    assert a.identity == "openai-compatible:llama@http://a:8000/v1"
    assert RetryingModel(a, ModelRetry()).identity == a.identity
    assert FallbackModel([a, b]).identity == f"{a.identity}|{b.identity}"
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        (folder / "model.gguf").write_bytes(b"GGUF")
    first, second = LocalModel(path=one / "model.gguf"), LocalModel(path=two / "model.gguf")
    assert first.name == second.name and first.identity != second.identity
