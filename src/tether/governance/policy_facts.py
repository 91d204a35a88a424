"""What a policy sees of a call (``Facts``), and how a caller tells it the model's confidence.

Confidence is the caller's to give, the closest first: ``with model_confidence(0.62): await
tools.call(...)`` around the calls a model's answer proposed (``confidence_of(response)`` reads
a cascade's score off a ``ModelResponse``), else the run's metadata ``{"confidence": 0.62}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from typing import Any

from tether.core.errors import ConfigurationError
from tether.core.governor import GovernedCall
from tether.governance.policy_rules import Facts
from tether.governance.scope import RunScope

_CONFIDENCE: ContextVar[float | None] = ContextVar("tether_policy_confidence", default=None)


@contextmanager
def model_confidence(value: float | None) -> Iterator[None]:
    """The model's confidence (0..1) in the calls made inside the block, for policy rules with a
    ``confidence`` condition."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
    ):
        raise ConfigurationError(
            f"model_confidence takes a number in [0, 1] or None, got {value!r}"
        )
    token = _CONFIDENCE.set(None if value is None else float(value))
    try:
        yield
    finally:
        _CONFIDENCE.reset(token)


def confidence_of(response: Any) -> float | None:
    """The confidence a cascade recorded on a ``ModelResponse`` (``metadata["cascade"]``), or
    None."""
    meta = getattr(response, "metadata", None) or {}
    cascade = meta.get("cascade") if isinstance(meta, dict) else None
    value = cascade.get("confidence") if isinstance(cascade, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _metadata_confidence(metadata: Any) -> float | None:
    value = metadata.get("confidence") if isinstance(metadata, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def tool_scope(contract: Any) -> Any:
    """A tool contract's scope as text (``"read"``...); None without one. An enum member's
    value is read off the member (``_value_``), not through ``Enum.value``'s descriptor."""
    found = getattr(contract, "scope", None)
    if isinstance(found, Enum):
        return found._value_
    return getattr(found, "value", None)


def facts_of(scope: RunScope, call: GovernedCall) -> Facts:
    """The facts of ``call`` in the run of ``scope`` (``untrusted`` left for the guard)."""
    tool_scope_ = tool_scope(call.contract)
    confidence = _CONFIDENCE.get()
    if confidence is None:
        confidence = _metadata_confidence(scope.run.metadata)
    return Facts(
        kind=call.kind,
        tool=call.name,
        scope=tool_scope_,
        args=call.args,
        projected=call.projected,
        confidence=confidence,
        tenant=scope.run.tenant,
        metadata=scope.run.metadata,
    )
