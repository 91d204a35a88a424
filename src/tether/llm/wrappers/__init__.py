"""Resilience wrappers: each one is a ``Model`` around another ``Model``.

``resilient(model, fallbacks=[...])`` composes them in the right order; the pieces are here for
custom stacks: ``TimeoutModel``, ``RetryingModel`` (``ModelRetry``), ``BreakerModel`` (one
circuit breaker per provider), ``FallbackModel`` and ``HedgedModel``.
"""

from tether.core.breaker import BreakerPolicy
from tether.llm.wrappers.base import WrapperModel, innermost
from tether.llm.wrappers.breaker import (
    PROVIDER_BREAKERS,
    BreakerModel,
    BreakerRegistry,
    breaker_key,
    model_breaker,
    provider_breaker,
)
from tether.llm.wrappers.fallback import FALLBACK_ON, FallbackModel
from tether.llm.wrappers.hedge import HedgedModel
from tether.llm.wrappers.resilient import resilient
from tether.llm.wrappers.retry import NO_MODEL_RETRY, ModelRetry, RetryingModel
from tether.llm.wrappers.timeout import TimeoutModel

__all__ = [
    "FALLBACK_ON",
    "NO_MODEL_RETRY",
    "PROVIDER_BREAKERS",
    "BreakerModel",
    "BreakerPolicy",
    "BreakerRegistry",
    "FallbackModel",
    "HedgedModel",
    "ModelRetry",
    "RetryingModel",
    "TimeoutModel",
    "WrapperModel",
    "breaker_key",
    "innermost",
    "model_breaker",
    "provider_breaker",
    "resilient",
]
