"""A circuit breaker per provider: stop calling a provider that keeps failing, try again later.

``BreakerModel(inner)`` uses the process-wide breaker of ``inner``'s provider endpoint, keyed
``provider@base_url`` (or the model's name when it has no base URL), found through any
wrappers around it. So every model on one endpoint shares one breaker: when OpenAI is down,
``gpt-4o`` and ``gpt-4o-mini`` stop being called together, and a fallback chain moves on at
once. ``provider_breaker(key, policy)`` returns (creating) a registered breaker; pass
``breaker=`` to use your own (one not in the registry, e.g. built with ``model_breaker``) or
``key=`` to pick a separate registry entry. A provider has one policy: asking the registry for
an existing breaker with a different policy is a ``ConfigurationError``.

Only failures that say the provider is unhealthy count (timeouts, 5xx and dropped connections,
malformed answers, 429s: every ``retryable`` ModelError). A refused request
(``ModelRequestError``) says nothing about the provider's health and counts for nothing; so
does a cancelled call, which gives its half-open trial slot back (``release``). An open
breaker refuses with ``ModelCircuitOpenError`` (``retry_in`` seconds) without calling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tether.core.breaker import BreakerPolicy, CircuitBreaker
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError, ModelCircuitOpenError, ModelError
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk
from tether.llm.wrappers.base import WrapperModel, aclose, innermost


def model_breaker(name: str, policy: BreakerPolicy, clock: Clock = SYSTEM_CLOCK) -> CircuitBreaker:
    """A breaker whose refusals raise ``ModelCircuitOpenError`` (not registered)."""

    def reject(message: str, retry_in: float) -> Exception:
        return ModelCircuitOpenError(message, model=name, retry_in=retry_in)

    return CircuitBreaker(name, policy, clock, reject=reject, kind="model provider")


class BreakerRegistry:
    """Breakers by key; the module keeps one for the process (``PROVIDER_BREAKERS``)."""

    def __init__(self) -> None:
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(
        self, key: str, policy: BreakerPolicy | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> CircuitBreaker:
        policy = policy or BreakerPolicy()
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = model_breaker(key, policy, clock)
        elif breaker.policy != policy:
            raise ConfigurationError(
                f"the circuit breaker for {key!r} already exists with {breaker.policy}, not "
                f"{policy}: one provider has one breaker and one policy. Pass the same policy, "
                "or key=... (or breaker=...) for a separate breaker"
            )
        return breaker

    def clear(self) -> None:
        self._breakers.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._breakers


PROVIDER_BREAKERS = BreakerRegistry()


def provider_breaker(
    key: str, policy: BreakerPolicy | None = None, clock: Clock = SYSTEM_CLOCK
) -> CircuitBreaker:
    """The process-wide breaker registered under ``key``, created on first use."""
    return PROVIDER_BREAKERS.get(key, policy, clock)


def breaker_key(model: Model) -> str:
    """``provider@base_url`` of the provider under ``model``'s wrappers, else its name."""
    base = innermost(model)
    url = getattr(base, "base_url", None)
    return f"{base.provider}@{url}" if isinstance(url, str) and url else base.name


def unhealthy(exc: BaseException) -> bool:
    """Does this failure say the provider is unhealthy (so it counts against the breaker)?"""
    return isinstance(exc, ModelError) and exc.retryable


class BreakerModel(WrapperModel):
    def __init__(
        self,
        inner: Model,
        *,
        policy: BreakerPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        key: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(inner)
        if breaker is not None and (policy is not None or key is not None):
            raise ConfigurationError("BreakerModel takes breaker=... or policy/key, not both")
        self.breaker = breaker or provider_breaker(key or breaker_key(inner), policy, clock)

    def _verdict(self, exc: BaseException, *, streamed: bool = False) -> None:
        if unhealthy(exc):
            self.breaker.failure()
        elif streamed and not isinstance(exc, Exception):
            self.breaker.success()  # the caller left (or was cancelled) while chunks flowed
        else:
            self.breaker.release()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.breaker.before_call()
        try:
            response = await self.inner.complete(request)
        except BaseException as exc:
            self._verdict(exc)
            raise
        self.breaker.success()
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        self.breaker.before_call()
        chunks = aiter(self.inner.stream(request))
        flowed = False
        try:
            async for chunk in chunks:
                flowed = True
                yield chunk
        except BaseException as exc:
            self._verdict(exc, streamed=flowed)
            raise
        else:
            self.breaker.success()
        finally:
            await aclose(chunks)
