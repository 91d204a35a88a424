"""Counting a prompt's tokens the way the model will: its own tokenizer when it has one.

A :class:`TokenCounter` counts chat messages. :class:`ModelTokenCounter` asks the model:
``LocalModel`` (llama.cpp) tokenizes exactly with the GGUF file's own vocabulary; any other
``Model`` answers ``count_tokens`` with tether's documented estimate (about four characters a
token, ``tether.llm.estimate_tokens``) and the counter says so (``exact`` is False). Each
message adds the tokens its chat template wraps around it (ChatML: ``<|im_start|>role\\n`` ...
``<|im_end|>\\n``, 4 tokens) and the prompt ends with the 3 tokens that open the answer.

Counts are cached per message text (an LRU), so a 500-turn conversation is tokenized once a
message, not once a turn.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from tether.core.errors import ConfigurationError
from tether.core.messages import Message
from tether.llm.model import Model, estimate_tokens
from tether.llm.providers.prompt_tokens import PromptTokenizer
from tether.llm.types import ModelRequest

PER_MESSAGE = 4
"""Template tokens around each message (ChatML's ``<|im_start|>role\\n`` ... ``<|im_end|>\\n``)."""
REPLY_PRIMER = 3
"""Template tokens that open the answer (``<|im_start|>assistant\\n``)."""
CACHE_SIZE = 8192
"""Messages whose counts a counter keeps."""


@runtime_checkable
class TokenCounter(Protocol):
    """Counts what a model reads."""

    @property
    def exact(self) -> bool:
        """True when counts come from the model's own tokenizer, False for an estimate."""
        ...

    def count_text(self, text: str) -> int: ...

    def count_message(self, message: Message) -> int: ...

    def count_messages(self, messages: Iterable[Message]) -> int: ...


def message_text(message: Message) -> str:
    """What of ``message`` the model reads besides its template: content and tool calls."""
    if not message.tool_calls:
        return message.content
    calls = "".join(f"{c.name}({c.arguments})" for c in message.tool_calls)
    return message.content + calls


class _Counting:
    """The caching and template arithmetic shared by counters; ``_count`` does the text,
    ``_overhead`` the template tokens around one message of a role."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, str], int] = OrderedDict()

    def _count(self, text: str) -> int:
        raise NotImplementedError

    def _overhead(self, role: str) -> int:
        return PER_MESSAGE

    def _primer(self, has_system: bool) -> int:
        return REPLY_PRIMER

    def count_text(self, text: str) -> int:
        return self._count(text) if text else 0

    def count_message(self, message: Message) -> int:
        key = (message.role, message_text(message))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        n = self._overhead(message.role) + self.count_text(key[1])
        self._cache[key] = n
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return n

    def count_messages(self, messages: Iterable[Message]) -> int:
        """Tokens of the prompt made of ``messages``, the answer's opening included."""
        total, has_system = 0, False
        for m in messages:
            total += self.count_message(m)
            has_system = has_system or m.role == "system"
        return self._primer(has_system) + total


class EstimateCounter(_Counting):
    """About four characters a token (``tether.llm.estimate_tokens``) and ChatML's tokens
    around each message: for models without a tokenizer tether can run. Errs on the high side
    for English prose."""

    exact = False

    def _count(self, text: str) -> int:
        return estimate_tokens(text)


class ModelTokenCounter(_Counting):
    """Counts text with ``model.count_tokens`` (the model's tokenizer when it has one, else
    the estimate) and ChatML's tokens around each message."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        if not isinstance(model, Model):
            raise ConfigurationError(
                f"ModelTokenCounter needs a tether Model, got {type(model).__name__}; pass "
                "EstimateCounter() to count without one"
            )
        self.model = model

    @property
    def exact(self) -> bool:
        return self.model.exact_token_count

    def _count(self, text: str) -> int:
        return self.model.count_tokens(text)


_PROBE_SYSTEM = Message.system("Be brief.")
_PROBES = {
    "system": Message.system("Answer in English."),
    "user": Message.user("Hello there."),
    "assistant": Message.assistant("Hello."),
    "tool": Message.tool("call_0", "42", name="probe"),
}


class TemplateCounter(_Counting):
    """Exact for a tokenizer that can count a whole prompt (``count_prompt``: ``LocalModel``,
    llama.cpp's tokenizer and the GGUF file's own chat template; also the ``tokenizer`` an
    ``OpenAICompatibleModel`` serving that file was given). What the template adds
    around a message of each role, before the answer, and when there is no system message
    (SmolLM2's template then inserts its default system prompt) is learnt once, from the
    model's counts of a few two-message prompts; then each message is counted on its own and
    cached, which gives the count of the whole prompt for plain messages (tool calls'
    arguments are counted as text)."""

    exact = True

    def __init__(self, tokenizer: PromptTokenizer) -> None:
        super().__init__()
        if not isinstance(tokenizer, PromptTokenizer):
            raise ConfigurationError(
                f"{tokenizer!r} cannot count whole prompts (it needs count_prompt and "
                "count_tokens, like LocalModel)"
            )
        self.prompts = tokenizer
        self._learnt: dict[str, int] | None = None

    def _count(self, text: str) -> int:
        return self.prompts.count_tokens(text)

    def _prompt(self, *messages: Message) -> int:
        return self.prompts.count_prompt(ModelRequest(messages=messages))

    def _learn(self) -> dict[str, int]:
        if self._learnt is None:
            base = self._prompt(_PROBE_SYSTEM)
            sys_text = self._count(_PROBE_SYSTEM.content)
            out: dict[str, int] = {}
            for role, probe in _PROBES.items():
                out[role] = self._prompt(_PROBE_SYSTEM, probe) - base - self._count(probe.content)
            out["primer"] = base - out["system"] - sys_text
            user = _PROBES["user"]
            alone = self._prompt(user) - self._count(user.content) - out["user"]
            out["no_system"] = alone - out["primer"]
            self._learnt = out
        return self._learnt

    def _overhead(self, role: str) -> int:
        return self._learn().get(role, PER_MESSAGE)

    def _primer(self, has_system: bool) -> int:
        learnt = self._learn()
        return learnt["primer"] + (0 if has_system else learnt["no_system"])


def counter_for(model: Model | None) -> TokenCounter:
    """The best counter for ``model``: its own tokenizer and chat template when it (or its
    ``tokenizer``) can count a whole prompt (``LocalModel``; ``OpenAICompatibleModel(...,
    tokenizer=LocalModel(path=...))``), else its ``count_tokens`` (an estimate unless the model
    has a tokenizer), else the estimate."""
    if model is None:
        return EstimateCounter()
    if isinstance(model, PromptTokenizer):
        return TemplateCounter(model)
    tokenizer = getattr(model, "tokenizer", None)
    if isinstance(tokenizer, PromptTokenizer):  # a server running a GGUF file tether can read
        return TemplateCounter(tokenizer)
    return ModelTokenCounter(model)


def context_limit(model: Model | None) -> int | None:
    """The model's context window in tokens when it is known (``LocalModel.n_ctx``, or a
    ``context_window`` attribute any Model may carry), else None."""
    for attr in ("context_window", "n_ctx"):
        value = getattr(model, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
