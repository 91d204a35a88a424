"""Counting a streamed answer's tokens when an OpenAI-compatible server reports no usage.

OpenAI, vLLM and llama.cpp's own ``llama-server`` send usage in a last chunk when asked with
``stream_options.include_usage``; llama-cpp-python's server (``python -m llama_cpp.server``)
and some others do not. Then tether counts, best source first, and marks the usage
``estimated``:

- the prompt, with a ``tokenizer`` given to the model (a :class:`PromptTokenizer`, e.g. a
  ``LocalModel`` on the same GGUF file): exact, chat template included;
- else with the server's own tokenizer (llama-cpp-python's ``/extras/tokenize/count``) over
  the conversation written out in ChatML, plus what the server's chat template adds beyond
  ChatML (SmolLM2's adds a default system prompt of 21 tokens when there is none). That
  difference is learnt once per model, for conversations with and without a system message,
  from the ``prompt_tokens`` of a one-token unstreamed completion of a tiny conversation;
- else about four characters a token plus a few per message;
- the answer, one token per streamed piece (llama.cpp streams one token a piece), or by the
  tokenizer when the server sent it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import httpx
import orjson

from tether.core.errors import ModelError
from tether.core.messages import Message
from tether.llm.model import estimate_tokens
from tether.llm.types import ModelRequest

_PER_MESSAGE = 4
"""Tokens ChatML adds around each message: ``<|im_start|>role\\n`` ... ``<|im_end|>\\n``."""
_REPLY_PRIMER = 3
"""``<|im_start|>assistant\\n``, where the answer starts."""


@runtime_checkable
class PromptTokenizer(Protocol):
    """Counts tokens as one particular model does (``LocalModel`` is one)."""

    def count_prompt(self, request: ModelRequest) -> int:
        """Tokens of the prompt the model reads for ``request``, chat template included.
        May block (loading a tokenizer): called in a worker thread."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone."""
        ...


def chatml(request: ModelRequest) -> str:
    """The conversation in ChatML, up to where the answer starts."""
    turns = [f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in request.messages]
    return "".join(turns) + "<|im_start|>assistant\n"


def rough_prompt_tokens(request: ModelRequest) -> int:
    """About four characters a token, plus ChatML's tokens around each message."""
    return sum(estimate_tokens(m.content) + _PER_MESSAGE for m in request.messages) + _REPLY_PRIMER


class PromptCounter:
    """Counts a request's prompt tokens for one OpenAI-compatible model; remembers whether its
    server has a tokenize endpoint, so a server without one is asked only once."""

    def __init__(self, base_url: str, model: str, tokenizer: PromptTokenizer | None) -> None:
        root = base_url.rstrip("/")
        self.tokenize_url = root.removesuffix("/v1") + "/extras/tokenize/count"
        self.completions_url = root + "/chat/completions"
        self.model = model
        self.tokenizer = tokenizer
        self.server_counts: bool | None = None
        """None until tried; False once the server had no tokenize endpoint."""
        self.template_extra: dict[bool, int] = {}
        """Tokens the server's chat template adds beyond ChatML, with / without a system
        message (learnt once each)."""

    async def count(
        self, request: ModelRequest, client: httpx.AsyncClient, headers: Mapping[str, str]
    ) -> int:
        if self.tokenizer is not None:
            try:
                return await asyncio.to_thread(self.tokenizer.count_prompt, request)
            except ModelError:  # e.g. its chat template refused the conversation
                pass
        if self.server_counts is not False:
            counted = await self._server_count(request, client, headers)
            if counted is not None:
                return counted
        return rough_prompt_tokens(request)

    async def _server_count(
        self, request: ModelRequest, client: httpx.AsyncClient, headers: Mapping[str, str]
    ) -> int | None:
        count = await self._tokenize(chatml(request), client, headers)
        if count is None and self.server_counts is None:
            self.server_counts = False
        if count is None:
            return None
        self.server_counts = True
        system = any(m.role == "system" for m in request.messages)
        if system not in self.template_extra:
            self.template_extra[system] = await self._learn_extra(system, client, headers)
        return max(1, count + self.template_extra[system])

    async def _tokenize(
        self, text: str, client: httpx.AsyncClient, headers: Mapping[str, str]
    ) -> int | None:
        payload = {"model": self.model, "input": text}
        try:
            response = await client.post(
                self.tokenize_url, content=orjson.dumps(payload), headers=headers
            )
        except httpx.HTTPError:
            return None  # a transient failure: try again next time
        return _count(response, "count")

    async def _learn_extra(
        self, system: bool, client: httpx.AsyncClient, headers: Mapping[str, str]
    ) -> int:
        """What the server's template adds beyond ChatML: the prompt tokens it reports for a
        tiny conversation (one token answered), less that conversation's ChatML count. 0
        when either cannot be had."""
        messages = [Message.system("Be brief.")] if system else []
        probe = ModelRequest(messages=(*messages, Message.user("Hi")))
        payload = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in probe.messages],
            "max_tokens": 1,
            "temperature": 0.0,
        }
        try:
            response = await client.post(
                self.completions_url, content=orjson.dumps(payload), headers=headers
            )
        except httpx.HTTPError:
            return 0
        reported = _count(response, "usage", "prompt_tokens")
        ours = await self._tokenize(chatml(probe), client, headers)
        return reported - ours if reported is not None and ours is not None else 0


def _count(response: httpx.Response, *path: str) -> int | None:
    """The positive integer at ``path`` in a 200 answer's JSON body; None otherwise."""
    if response.status_code != 200:
        return None
    try:
        value: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
