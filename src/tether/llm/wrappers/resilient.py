"""``resilient(model)``: the wrappers composed in the order that makes each one mean something.

Per model, from the inside out::

    HedgedModel(BreakerModel(RetryingModel(TimeoutModel(model))))    # hedge only if asked

- the **timeout** is innermost, so it bounds each attempt, not the whole retry loop;
- **retries** sit inside the breaker, so the breaker sees one outcome per call: a call that
  succeeded on its second attempt is a success, one that failed every attempt one failure.
  An open breaker then refuses before any attempt is made (nothing to retry, nothing sent);
- the **hedge** (``hedge_after`` seconds) wraps the rest, so a hedged request has its own
  timeout and retries and passes the breaker like any call: a half-open breaker lets one trial
  through and refuses the hedge. Per model rather than around the whole chain, because a hedge
  around the chain would start a second walk from the first model (which is then hedged
  anyway) and would not hedge a slow fallback model at all.

The **fallback chain** is outermost: ``model`` then each of ``fallbacks``, each with its own
stack (its own timeout, retries and provider breaker). A chain that moves on quickly when a
breaker is open is the point of having both.

``timeout=None``, ``retry=None``, ``breaker=None`` leave that layer out.
"""

from __future__ import annotations

from collections.abc import Sequence

from tether.core.breaker import BreakerPolicy
from tether.core.errors import ConfigurationError
from tether.llm.model import Model
from tether.llm.wrappers.breaker import BreakerModel
from tether.llm.wrappers.fallback import FallbackModel
from tether.llm.wrappers.hedge import HedgedModel
from tether.llm.wrappers.retry import ModelRetry, RetryingModel
from tether.llm.wrappers.timeout import TimeoutModel


def resilient(
    model: Model,
    *,
    timeout: float | None = 60.0,
    retry: ModelRetry | None = ModelRetry(),
    breaker: BreakerPolicy | None = BreakerPolicy(),
    fallbacks: Sequence[Model] = (),
    hedge_after: float | None = None,
) -> Model:
    """``model`` with timeouts, retries, its provider's circuit breaker, an optional hedge, and
    a fallback chain over ``fallbacks``; a single model's stack when there are no fallbacks."""
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(
            f"resilient(timeout=...) must be > 0 seconds or None, got {timeout}"
        )
    chain = [_stack(m, timeout, retry, breaker, hedge_after) for m in (model, *fallbacks)]
    return chain[0] if len(chain) == 1 else FallbackModel(chain)


def _stack(
    model: Model,
    timeout: float | None,
    retry: ModelRetry | None,
    breaker: BreakerPolicy | None,
    hedge_after: float | None,
) -> Model:
    if timeout is not None:
        model = TimeoutModel(model, timeout)
    if retry is not None:
        model = RetryingModel(model, retry)
    if breaker is not None:
        model = BreakerModel(model, policy=breaker)
    if hedge_after is not None:
        model = HedgedModel(model, delay=hedge_after)
    return model
