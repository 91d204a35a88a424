"""One rule for an idempotency key sent again: the same request is answered with the run the
first one made; the same key with anything else asked differently is refused.

The input is compared by the run's ``input_hash`` (in the store, under the key's uniqueness).
The other parameters of a start (``metadata``, ``queue``, ``priority``, ``budget``,
``max_attempts``, ``max_steps``, ``delay``) are compared by the fingerprints the run keeps of
them in its metadata (``IDEMPOTENCY_KEY``), written with the run: a retry that asks for another
queue, priority, budget or metadata is an ``IdempotencyConflictError`` naming each field that
differs (its ``fields``), never the first run answered as if it were what was asked. A run
made before the fingerprints were kept has none: only its input is compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.core import serde
from tether.core.errors import IdempotencyConflictError
from tether.store.types import RunRecord

IDEMPOTENCY_KEY = "tether_idempotency"
"""Run metadata: ``{parameter: fingerprint}`` of what the run's start asked besides its input.
A ``tether`` name (one the server refuses from clients), never a plain one a user's own
metadata may hold: ``idempotency`` would overwrite theirs."""


def fingerprints(
    *,
    metadata: Mapping[str, Any] | None,
    queue: str,
    priority: int,
    budget: Mapping[str, Any] | None,
    max_attempts: int | None,
    max_steps: int | None,
    delay: float | None,
) -> dict[str, str]:
    """Short fingerprints of a start's parameters (no value given and an empty one agree)."""
    asked: dict[str, Any] = {
        "metadata": dict(metadata or {}),
        "queue": queue,
        "priority": priority,
        "budget": dict(budget) if budget else None,
        "max_attempts": max_attempts,
        "max_steps": max_steps,
        "delay": delay,
    }
    return {name: serde.fingerprint(value)[:16] for name, value in asked.items()}


def check_same_request(key: str | None, existing: RunRecord, asked: Mapping[str, str]) -> None:
    """``existing`` is the run an earlier start under ``key`` made (same workflow, tenant and
    input): refuse this start if it asked for any parameter otherwise."""
    kept = existing.metadata.get(IDEMPOTENCY_KEY)
    if not isinstance(kept, Mapping):
        return  # made before fingerprints were kept: its input was all there was to compare
    differ = [name for name, value in asked.items() if name in kept and kept[name] != value]
    if differ:
        err = IdempotencyConflictError(
            f"idempotency key {key!r} was already used by run {existing.run_id} with another "
            f"{', '.join(differ)}; send the same request again to get that run, or use a new "
            "key for a different request"
        )
        err.fields = differ  # type: ignore[attr-defined]
        raise err
