"""What every wrapper shares: a Model around one inner Model that keeps the inner's identity.

A wrapper takes the inner model's ``provider``, ``model_name``, ``prices`` and tokenizer, so
``name``, usage counting and pricing are those of the model that actually answers. Wrapper
notes go into ``ModelResponse.metadata`` (``attempts``, ``fallback``, ``hedged``...), merged
into what the inner model already wrote, never replacing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tether.core.errors import ModelError
from tether.llm.failed_call import cut_usage
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage, plus


def spent_by(exc: BaseException) -> Usage | None:
    """Tokens a failed request had consumed (``ModelError.usage``: an answer received and
    refused, which the provider bills), or None."""
    usage = getattr(exc, "usage", None) if isinstance(exc, ModelError) else None
    return usage if isinstance(usage, Usage) else None


class WrapperModel(Model):
    """A Model that forwards to ``inner``; subclasses implement ``complete`` (and ``stream``)."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model_name = inner.model_name
        self.prices = inner.prices

    @property
    def identity(self) -> str:
        return self.inner.identity

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    @property
    def exact_token_count(self) -> bool:
        return self.inner.exact_token_count


def with_spent(
    model: Model, request: ModelRequest, response: ModelResponse, extra: Usage | None
) -> ModelResponse:
    """``response`` (of ``model``) with ``extra`` tokens (what other requests of this call
    consumed: a refused answer a retry replaced, a hedge cancelled in flight) added to its
    usage and cost, so a budget charges what the call spent, not its last answer alone. A
    response whose provider reported no usage is counted first (``estimated``)."""
    if extra is None or extra.total_tokens == 0:
        return response
    usage = answered(model, request, response)
    update: dict[str, Any] = {
        "usage": Usage(
            input_tokens=usage.input_tokens + extra.input_tokens,
            output_tokens=usage.output_tokens + extra.output_tokens,
            estimated=usage.estimated or extra.estimated,
        )
    }
    if response.cost is not None:  # priced already (else finalize prices the total)
        more = model.price(extra, response.model or None)
        update["cost"] = response.cost + (more or 0.0)
    return response.model_copy(update=update)


def answered(model: Model, request: ModelRequest, response: ModelResponse) -> Usage:
    """What an answer of ``model`` consumed: its usage as ``Model.finalize`` fills it in (as
    reported, else counted from the request and the answer, ``estimated`` unless the tokenizer
    is exact)."""
    return model.finalize(request, response, response.timing.latency).usage


def innermost(model: Model) -> Model:
    """The model at the bottom of a stack of single-inner wrappers (the provider)."""
    while isinstance(model, WrapperModel):
        model = model.inner
    return model


def noted(response: ModelResponse, key: str, value: Any, *, answered_by: str = "") -> ModelResponse:
    """A copy of ``response`` with ``metadata[key] = value`` (and ``model`` filled in with
    ``answered_by`` when the inner model left it empty)."""
    update: dict[str, Any] = {"metadata": {**response.metadata, key: value}}
    if answered_by and not response.model:
        update["model"] = answered_by
    return response.model_copy(update=update)


def noted_chunk(chunk: StreamChunk, key: str, value: Any, *, answered_by: str = "") -> StreamChunk:
    """The same note on a stream chunk's final response; text deltas pass unchanged."""
    if chunk.response is None:
        return chunk
    return chunk.model_copy(
        update={"response": noted(chunk.response, key, value, answered_by=answered_by)}
    )


async def aclose(stream: AsyncIterator[StreamChunk]) -> None:
    """Close an abandoned stream now (async generators otherwise linger until collected)."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def open_stream(
    model: Model, request: ModelRequest
) -> tuple[list[StreamChunk], AsyncIterator[StreamChunk]] | None:
    """Start ``model``'s stream and wait for its first text (or its end): (the chunks so far,
    the rest), or None for an empty stream. A ModelError before then closes the stream and is
    raised, so the caller may retry or fail over: nothing has reached its own caller yet (a
    tool call's pieces are not shown, so they are held back here). The error then carries
    what the attempt was billed for those pieces, with its prompt (``ModelError.usage``)."""
    chunks = aiter(model.stream(request))
    held: list[StreamChunk] = []
    try:
        while not held or not (held[-1].delta or held[-1].response is not None):
            held.append(await anext(chunks))
    except StopAsyncIteration:
        return (held, chunks) if held else None
    except ModelError as exc:
        await aclose(chunks)
        pieces = "".join(c.tool_delta for c in held)
        if pieces:
            exc.usage = plus(spent_by(exc), cut_usage(model, request, pieces))
        raise
    return held, chunks


def spent_chunk(
    model: Model, request: ModelRequest, chunk: StreamChunk, extra: Usage | None
) -> StreamChunk:
    """``chunk`` with ``extra`` (what the stream's failed attempts were billed) added to its
    final response's usage (``with_spent``); a text delta passes unchanged."""
    if chunk.response is None or extra is None:
        return chunk
    return chunk.model_copy(update={"response": with_spent(model, request, chunk.response, extra)})


def add_wasted(exc: ModelError, wasted: Usage | None) -> None:
    """Charge ``exc`` (a stream that failed after its text reached the caller, too late to try
    again) with what the stream's earlier failed attempts were billed, ``wasted``."""
    if wasted is not None:
        exc.usage = plus(spent_by(exc), wasted)
