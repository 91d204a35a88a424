"""A cascade: ask a small model first, escalate to a large one only when the answer looks weak.

``CascadeModel(small, large)`` asks ``small``; the answer is returned unless one of these says
it is not good enough, checked in this order (the first that fires is the recorded reason):

- ``small_error``: the small model failed with a ModelError (``escalate_on_error=False``
  raises it instead);
- ``invalid_output``: a ``response_format`` was asked for and the answer does not parse as
  JSON or does not validate against the schema;
- ``low_confidence``: the confidence is below ``threshold``. With ``confidence="logprobs"``
  (the default) the small model is asked for logprobs and the confidence is
  ``exp(mean token logprob)`` (the geometric mean of the token probabilities); when the
  provider returned none, the ``judge`` decides instead. ``confidence="judge"`` always asks
  the judge; a callable ``confidence(request, response) -> float | None`` scores it itself;
- ``judge_rejected``: the judge said no. A judge is ``judge(request, response)``, sync or
  async, returning a bool (accept?), a float (a confidence, compared with ``threshold``) or
  ``(accept, reason)``: a validator, or a wrapper that asks a judge model;
  ``model_judge(model)`` builds one that asks a (usually larger) model for a verdict;
- ``no_signal``: nothing could score the answer (no logprobs and no judge): accepted, unless
  ``no_signal="escalate"``;
- ``bad_signal``: the score is not a number (NaN, a logprob of NaN, a judge that returned None
  or text): escalated, since a broken scorer must not pass every answer.

``metadata["cascade"]`` records ``escalated``, ``reason``, ``detail``, ``confidence``, and the
``small`` and ``large`` model names. An escalated answer is the large model's, but it accounts
for both calls: ``usage`` is the sum of both models' tokens, ``cost`` the sum of each call
priced as its own model, and ``metadata["cascade"]`` keeps the small call's ``small_usage``
and ``small_cost``. Streaming streams the large model's answer when escalating (the small one
is asked in full first, since it may be thrown away).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from tether.core.errors import ConfigurationError, ModelError, StructuredOutputError
from tether.core.messages import Message
from tether.llm.model import Model
from tether.llm.structured import extract_json, generate_structured, schema_errors
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage

Verdict = bool | float | tuple[bool, str]
Judge = Callable[[ModelRequest, ModelResponse], Verdict | Awaitable[Verdict]]
Scorer = Callable[[ModelRequest, ModelResponse], float | Awaitable[float | None] | None]


@dataclass(frozen=True, slots=True)
class Decision:
    escalate: bool
    reason: str
    detail: str = ""
    confidence: float | None = None


def logprob_confidence(logprobs: tuple[float, ...] | None) -> float | None:
    """``exp(mean logprob)``: the geometric mean of the generated tokens' probabilities (NaN
    when a logprob is NaN: the cascade escalates it)."""
    return math.exp(sum(logprobs) / len(logprobs)) if logprobs else None


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _settle(
    model: Model, request: ModelRequest, response: ModelResponse, since: float
) -> ModelResponse:
    """Fill in the answering model's name, usage (counted when missing) and cost."""
    return model.finalize(request, response, time.perf_counter() - since)


class CascadeModel(Model):
    provider = "cascade"

    def __init__(
        self,
        small: Model,
        large: Model,
        *,
        threshold: float = 0.6,
        confidence: Literal["logprobs", "judge"] | Scorer = "logprobs",
        judge: Judge | None = None,
        escalate_on_error: bool = True,
        no_signal: Literal["accept", "escalate"] = "accept",
    ) -> None:
        if confidence == "judge" and judge is None:
            raise ConfigurationError("CascadeModel(confidence='judge') needs judge=...")
        if not callable(confidence) and confidence not in ("logprobs", "judge"):
            raise ConfigurationError(
                f"confidence must be 'logprobs', 'judge' or a callable, got {confidence!r}"
            )
        if not 0.0 <= threshold <= 1.0:
            raise ConfigurationError(f"CascadeModel threshold must be in [0, 1], got {threshold}")
        self.small, self.large = small, large
        self.threshold, self.confidence, self.judge = threshold, confidence, judge
        self.escalate_on_error, self.no_signal = escalate_on_error, no_signal
        self.model_name = f"{small.name}>{large.name}"

    def projected(self, request: ModelRequest) -> dict[str, float]:
        """The most a call may cost: both models answering (the small one, then the large)."""
        small, large = self.small.projected(request), self.large.projected(request)
        return {dim: small.get(dim, 0.0) + large.get(dim, 0.0) for dim in {*small, *large}}

    @property
    def identity(self) -> str:
        return f"{self.small.identity}>{self.large.identity}"

    def count_tokens(self, text: str) -> int:
        return self.small.count_tokens(text)

    async def _score(self, request: ModelRequest, response: ModelResponse) -> Decision:
        if request.response_format is not None:
            try:
                errors = schema_errors(
                    request.response_format.json_schema, extract_json(response.text)
                )
            except ValueError as exc:
                errors = [str(exc)]
            if errors:
                return Decision(True, "invalid_output", "; ".join(errors[:3]))
        confidence: float | None = None
        if callable(self.confidence):
            confidence = await _resolve(self.confidence(request, response))
        elif self.confidence == "logprobs":
            confidence = logprob_confidence(response.logprobs)
        if confidence is None and self.judge is not None:
            verdict = await _resolve(self.judge(request, response))
            if isinstance(verdict, tuple):
                accepted, why = verdict
                return Decision(not accepted, "accepted" if accepted else "judge_rejected", why)
            if isinstance(verdict, bool):
                return Decision(not verdict, "accepted" if verdict else "judge_rejected")
            return self._compare(verdict, "the judge")
        if confidence is None:
            return Decision(self.no_signal == "escalate", "no_signal", "no logprobs and no judge")
        return self._compare(confidence, "the confidence")

    def _compare(self, confidence: object, source: str) -> Decision:
        """Accept at or above ``threshold``; escalate below it, and for a score that is not a
        number (NaN compares false with everything: it would pass every answer)."""
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or math.isnan(confidence)
        ):
            return Decision(True, "bad_signal", f"{source} gave {confidence!r}, not a number")
        if confidence < self.threshold:
            detail = f"confidence {confidence:.3f} < threshold {self.threshold:g}"
            return Decision(True, "low_confidence", detail, confidence)
        return Decision(False, "accepted", "", confidence)

    async def _ask_small(self, request: ModelRequest) -> tuple[ModelResponse | None, Decision]:
        asked = request
        if self.confidence == "logprobs" and not request.logprobs:
            asked = request.model_copy(update={"logprobs": True})
        started = time.perf_counter()
        try:
            response = await self.small.complete(asked)
        except ModelError as exc:
            if not self.escalate_on_error:
                raise
            return None, Decision(True, "small_error", f"{type(exc).__name__}: {exc}")
        response = _settle(self.small, request, response, started)
        return response, await self._score(request, response)

    def _note(self, decision: Decision, small: ModelResponse | None) -> dict[str, Any]:
        note: dict[str, Any] = {
            "escalated": decision.escalate,
            "reason": decision.reason,
            "detail": decision.detail,
            "confidence": decision.confidence,
            "small": self.small.name,
            "large": self.large.name,
        }
        if decision.escalate and small is not None:
            note["small_usage"] = small.usage.model_dump()
            note["small_cost"] = small.cost
        return note

    def _merge(
        self, decision: Decision, small: ModelResponse | None, large: ModelResponse, started: float
    ) -> ModelResponse:
        metadata = {**large.metadata, "cascade": self._note(decision, small)}
        update: dict[str, Any] = {"metadata": metadata}
        if small is not None:
            a, b = small.usage, large.usage
            update["usage"] = Usage(
                input_tokens=a.input_tokens + b.input_tokens,
                output_tokens=a.output_tokens + b.output_tokens,
                estimated=a.estimated or b.estimated,
            )
            costs = [c for c in (small.cost, large.cost) if c is not None]
            update["cost"] = sum(costs) if costs else None
            latency = time.perf_counter() - started
            update["timing"] = large.timing.model_copy(update={"latency": latency})
        return large.model_copy(update=update)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        small, decision = await self._ask_small(request)
        if small is not None and not decision.escalate:
            return small.model_copy(
                update={"metadata": {**small.metadata, "cascade": self._note(decision, small)}}
            )
        asked = time.perf_counter()
        large = _settle(self.large, request, await self.large.complete(request), asked)
        return self._merge(decision, small, large, started)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        started = time.perf_counter()
        small, decision = await self._ask_small(request)
        if small is not None and not decision.escalate:
            if small.text:
                yield StreamChunk(delta=small.text)
            note = self._note(decision, small)
            yield StreamChunk(
                response=small.model_copy(update={"metadata": {**small.metadata, "cascade": note}})
            )
            return
        asked = time.perf_counter()
        async for chunk in self.large.stream(request):
            if chunk.response is None:
                yield chunk
                continue
            large = _settle(self.large, request, chunk.response, asked)
            yield StreamChunk(
                delta=chunk.delta, response=self._merge(decision, small, large, started)
            )


JUDGE_INSTRUCTIONS = (
    "You check answers. Given a request and an answer, decide whether the answer is correct, "
    "complete and responsive. Reply with JSON: accept (true or false) and a short reason."
)


class _Verdict(BaseModel):
    accept: bool
    reason: str = Field(default="", max_length=500)


def model_judge(
    model: Model, *, instructions: str = JUDGE_INSTRUCTIONS, max_tokens: int = 96
) -> Judge:
    """A judge that asks ``model`` for ``{"accept": bool, "reason": str}`` about the small
    model's answer (structured output, one repair). A judge that cannot produce a valid verdict
    rejects, so the cascade escalates rather than trusting an unchecked answer. Inside a run
    the judge's call is covered by the cascade's own journal entry and its usage is reported
    as a nested ``model_call`` event."""

    async def judge(request: ModelRequest, response: ModelResponse) -> tuple[bool, str]:
        answer = response.text or "; ".join(
            f"call {c.name}({c.arguments})" for c in response.tool_calls
        )
        asked = request.last_user_text or "\n".join(m.content for m in request.messages)
        try:
            result = await generate_structured(
                model,
                [
                    Message.system(instructions),
                    Message.user(f"Request:\n{asked}\n\nAnswer:\n{answer}"),
                ],
                _Verdict,
                max_repairs=1,
                temperature=0.0,
                max_tokens=max_tokens,
            )
        except StructuredOutputError as exc:
            return False, f"the judge gave no valid verdict ({exc})"
        return result.value.accept, result.value.reason

    return judge
