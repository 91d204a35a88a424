"""What a live model call puts out besides its answer: what it spent, per budget dimension
(``spent``), its ``model_call`` run event (``usage_event``), its GenAI span's attributes and
messages; and the governor's settle of a failed call (``settle_failed``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import orjson

from tether.llm.types import ModelRequest, ModelResponse
from tether.observability.genai import message_parts
from tether.observability.semconv import RESPONSE_TIME_TO_FIRST_CHUNK

log = logging.getLogger("tether.llm")


async def settle_failed(after_call: Awaitable[None], exc: BaseException) -> None:
    """Run a failed call's ``after_call`` (it releases the reservation and charges what the
    call spent). A cancelled call's is shielded from the cancellation that stopped the call,
    and its own failure is logged, not raised: the cancellation goes on as it came."""
    if not isinstance(exc, asyncio.CancelledError):
        await after_call
        return
    try:
        await asyncio.shield(after_call)
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("a cancelled model call's budget could not be settled")


def said(response: ModelResponse) -> bool:
    """Whether an answer said anything (text or tool calls)."""
    return bool(response.text) or bool(response.tool_calls)


def call_text(response: ModelResponse) -> str:
    """The tool calls of an answer as the text a provider bills (names and arguments)."""
    return "".join(
        c.name + (c.raw_arguments or orjson.dumps(c.arguments).decode())
        for c in response.tool_calls
    )


def spent(response: ModelResponse) -> dict[str, float]:
    """What a live call cost, per budget dimension (``CallOutcome.usage``)."""
    out = {
        "input_tokens": float(response.usage.input_tokens),
        "output_tokens": float(response.usage.output_tokens),
    }
    if response.cost is not None:
        out["cost"] = float(response.cost)
    return out


def usage_event(response: ModelResponse) -> dict[str, Any]:
    """The ``model_call`` run event: who answered, tokens, cost, timings, wrapper notes."""
    return {
        "model": response.model,
        "input_tokens": response.usage.input_tokens,
        "output_tokens": response.usage.output_tokens,
        "estimated": response.usage.estimated,
        "cost": response.cost,
        "latency": response.timing.latency,
        "ttft": response.timing.ttft,
        "tpot": response.timing.tpot,
        "finish_reason": response.finish_reason,
        "tool_calls": [c.name for c in response.tool_calls],
        **{k: v for k, v in response.metadata.items() if k in _EVENT_METADATA},
    }


_EVENT_METADATA = ("cache", "fallback", "cascade", "attempts", "hedged")


def span_attributes(response: ModelResponse, request: ModelRequest) -> dict[str, Any]:
    return {
        "gen_ai.response.model": response.model.split(":", 1)[-1],
        "gen_ai.response.id": response.id,
        "gen_ai.response.finish_reasons": [response.finish_reason],
        "gen_ai.usage.input_tokens": response.usage.input_tokens,
        "gen_ai.usage.output_tokens": response.usage.output_tokens,
        "gen_ai.output.type": "json" if request.response_format is not None else "text",
        "tether.gen_ai.cost_usd": response.cost,
        "tether.gen_ai.ttft_s": response.timing.ttft,
        "tether.gen_ai.tpot_s": response.timing.tpot,
        "tether.gen_ai.usage_estimated": response.usage.estimated,
        RESPONSE_TIME_TO_FIRST_CHUNK: response.timing.ttft,
    }


def prompt_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The request's messages in the GenAI conventions' message format."""
    return [
        message_parts(m.role, m.content, [(c.id, c.name, c.arguments) for c in m.tool_calls])
        for m in request.messages
    ]


def answer_message(response: ModelResponse) -> dict[str, Any]:
    calls = [(c.id, c.name, c.arguments) for c in response.tool_calls]
    out = message_parts("assistant", response.text, calls)
    out["finish_reason"] = response.finish_reason
    return out
