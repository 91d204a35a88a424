"""A fallback chain: try each model in order until one answers.

The chain moves on for the errors in ``on``: by default every failure that says *that model*
cannot answer now (timeouts, 5xx, malformed answers, 429s, an open circuit, a nested chain
that ran dry). A refused request (``ModelRequestError``: bad key, unknown model, a request too
long) is raised at once, since it is usually the caller's to fix, unless
``fallback_on_request_errors=True`` (useful when the next model has a larger context window).
Any other error is raised at once too. When every model failed, ``ModelUnavailableError``
lists each model and its error (``errors`` holds them in order).

The chain is named ``fallback:<name>|<name>|...``, but each response carries the name of the
model that answered, so usage and cost are priced as that model's (with the first model's
price table when the models were given different ones). ``metadata["fallback"]`` says which
model answered and why the ones before it were skipped. Streams fail over only before their
first chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from tether.core.errors import (
    ConfigurationError,
    ModelCircuitOpenError,
    ModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelTransientError,
    ModelUnavailableError,
)
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage, plus
from tether.llm.wrappers.base import (
    aclose,
    add_wasted,
    noted,
    noted_chunk,
    open_stream,
    spent_by,
    spent_chunk,
    with_spent,
)

FALLBACK_ON: tuple[type[ModelError], ...] = (
    ModelTimeoutError,
    ModelTransientError,
    ModelRateLimitedError,
    ModelCircuitOpenError,
    ModelUnavailableError,
)
"""The default ``on``: the retryable errors (``ModelResponseError`` is a transient one), an
open circuit, and a nested fallback chain that ran out of models."""


class FallbackModel(Model):
    provider = "fallback"

    def __init__(
        self,
        models: Sequence[Model],
        *,
        on: tuple[type[ModelError], ...] = FALLBACK_ON,
        fallback_on_request_errors: bool = False,
    ) -> None:
        if not models:
            raise ConfigurationError("FallbackModel needs at least one model")
        self.models = tuple(models)
        self.on = (*on, ModelRequestError) if fallback_on_request_errors else on
        self.model_name = "|".join(m.name for m in self.models)
        self.prices = next((m.prices for m in self.models if m.prices is not None), None)

    @property
    def identity(self) -> str:
        return "|".join(m.identity for m in self.models)

    def count_tokens(self, text: str) -> int:
        return self.models[0].count_tokens(text)

    @property
    def exact_token_count(self) -> bool:
        return self.models[0].exact_token_count

    def _skip(self, exc: ModelError, model: Model, skipped: list[dict[str, Any]]) -> None:
        if not isinstance(exc, self.on):
            raise exc
        skipped.append({"model": model.name, "error": f"{type(exc).__name__}: {exc}"})

    def _exhausted(self, errors: list[ModelError]) -> ModelUnavailableError:
        lines = "; ".join(
            f"{m.name}: {type(e).__name__}: {e}" for m, e in zip(self.models, errors, strict=True)
        )
        error = ModelUnavailableError(
            f"all {len(self.models)} models of the fallback chain failed ({lines}); check the "
            "providers' status, or add a fallback model that does not share their failure",
            errors=errors,
        )
        error.model = self.name
        return error

    def projected(self, request: ModelRequest) -> dict[str, float]:
        """The most a call may cost: its costliest model's projection, per dimension (the
        chain's own name has no price)."""
        out: dict[str, float] = {}
        for model in self.models:
            for dim, amount in model.projected(request).items():
                out[dim] = max(out.get(dim, 0.0), amount)
        return out

    async def complete(self, request: ModelRequest) -> ModelResponse:
        errors: list[ModelError] = []
        skipped: list[dict[str, Any]] = []
        wasted: Usage | None = None  # answers received and refused: billed all the same
        for index, model in enumerate(self.models):
            try:
                response = await model.complete(request)
            except ModelError as exc:
                self._skip(exc, model, skipped)
                errors.append(exc)
                wasted = plus(wasted, spent_by(exc))
                continue
            note = {"used": model.name, "index": index, "skipped": skipped}
            response = with_spent(self, request, response, wasted)
            return noted(response, "fallback", note, answered_by=model.name)
        exhausted = self._exhausted(errors)
        exhausted.usage = wasted
        raise exhausted

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        errors: list[ModelError] = []
        skipped: list[dict[str, Any]] = []
        wasted: Usage | None = None  # models that failed after billing (a cut tool call)
        for index, model in enumerate(self.models):
            try:
                opened = await open_stream(model, request)
            except ModelError as exc:
                self._skip(exc, model, skipped)
                errors.append(exc)
                wasted = plus(wasted, spent_by(exc))
                continue
            if opened is None:
                return
            note = {"used": model.name, "index": index, "skipped": skipped}
            first, chunks = opened
            try:
                for chunk in first:
                    chunk = spent_chunk(self, request, chunk, wasted)
                    yield noted_chunk(chunk, "fallback", note, answered_by=model.name)
                async for chunk in chunks:
                    chunk = spent_chunk(self, request, chunk, wasted)
                    yield noted_chunk(chunk, "fallback", note, answered_by=model.name)
            except ModelError as exc:  # cut after its text: charged the models before it too
                add_wasted(exc, wasted)
                raise
            finally:
                await aclose(chunks)
            return
        exhausted = self._exhausted(errors)
        exhausted.usage = wasted
        raise exhausted
