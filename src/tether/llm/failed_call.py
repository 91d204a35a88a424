"""What a model call that did not return an answer had spent, and the event that reports it.

A provider bills a call that never reached its caller as an answer: a refused answer a retry
replaced (``ModelError.usage``, carried by the retry and fallback wrappers), and the part of a
streamed answer that arrived before the stream was cut (a dying server, a proxy's timeout, the
caller cancelled). ``Received`` collects what a stream delivered (its text, and the pieces of
its tool calls: names and arguments, billed as output though no text came); ``failed_usage``
adds what is known, so a budget charges a cut stream's prompt and the tokens it got, not
nothing, and a run's usage (its ``model_call`` events) counts the call. A call cancelled before
anything arrived, and with nothing known, is charged what it may have cost (its projection):
nothing says the provider did not bill it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tether.core.errors import ModelError
from tether.core.json_copy import error_text
from tether.llm.types import ModelRequest, Usage, plus

if TYPE_CHECKING:
    from tether.llm.model import Model


class Received:
    """What a streamed call delivered so far: its text deltas and its tool calls' pieces
    (``StreamChunk.tool_delta``), the output a provider bills."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, delta: str) -> None:
        self.parts.append(delta)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def failed_usage(
    model: Model, request: ModelRequest, exc: BaseException, received: Received
) -> Usage | None:
    """The tokens a call that failed with ``exc`` had consumed, or None when nothing is known:
    what the error carries (answers received and refused) plus, when a stream was cut after
    text or tool-call pieces arrived, its prompt and what arrived (counted, ``estimated``). A
    cancelled call that got nothing is counted at its projection (prompt and ``max_tokens``)."""
    known = getattr(exc, "usage", None) if isinstance(exc, ModelError) else None
    spent = known if isinstance(known, Usage) and known.total_tokens > 0 else None
    text = received.text
    if text:
        return plus(spent, cut_usage(model, request, text))
    if spent is None and isinstance(exc, asyncio.CancelledError):
        projected = model.projected(request)
        return Usage(
            input_tokens=int(projected["input_tokens"]),
            output_tokens=int(projected["output_tokens"]),
            estimated=True,
        )
    return spent


def cut_usage(model: Model, request: ModelRequest, received: str) -> Usage:
    """What a stream cut after ``received`` (its text and tool-call pieces) had consumed: its
    prompt and ``received``, counted with the model's tokenizer (``estimated``)."""
    prompt = sum(model.count_tokens(m.content) for m in request.messages)
    return Usage(input_tokens=prompt, output_tokens=model.count_tokens(received), estimated=True)


def budget_amounts(model: Model, used: Usage | None) -> dict[str, float]:
    """``used`` per budget dimension (tokens, and cost when the model is priced)."""
    if used is None or used.total_tokens == 0:
        return {}
    out = {"input_tokens": float(used.input_tokens), "output_tokens": float(used.output_tokens)}
    cost = model.price(used)
    if cost is not None:
        out["cost"] = cost
    return out


def failure_event(
    model: Model, used: Usage | None, exc: BaseException, latency: float
) -> dict[str, Any]:
    """The ``model_call`` event of a call that raised ``exc`` after ``latency`` seconds: the
    model, what it spent (zero when unknown) and the error."""
    usage = used or Usage()
    error = "cancelled" if isinstance(exc, asyncio.CancelledError) else error_text(exc)
    return {
        "model": model.name,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "estimated": usage.estimated,
        "cost": model.price(usage) if used is not None else None,
        "latency": latency,
        "error": f"{type(exc).__name__}: {error}"[:300],
        "error_type": type(exc).__name__,
    }
