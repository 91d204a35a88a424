"""One rule for an idempotency key sent again: the same request is answered with the run the
first one made; the same key with anything else asked differently is refused.

The input is compared by the run's ``input_hash`` (in the store, under the key's uniqueness).
The other parameters of a start (``metadata``, ``queue``, ``priority``, ``budget``,
``max_attempts``, ``max_steps``, ``delay``) are compared by the fingerprints the run keeps of
them in its metadata (``IDEMPOTENCY_KEY``), written with the run: a retry that asks for another
queue, priority, budget or metadata is an ``IdempotencyConflictError`` naming each field that
differs (its ``fields``), never the first run answered as if it were what was asked. A run
made before the fingerprints were kept has none: only its input is compared.

Numbers are compared by value, as JSON means them: a budget of ``{"cost": 2}`` and one of
``{"cost": 2.0}``, or a delay of ``5`` and ``5.0``, are the same request (one client's JSON
writes ``2``, another's ``2.0``, for the same number). Fingerprints kept by a tether from
before that rule hashed each number as it was sent: a request that sends it the same way
again still matches them (``Asked.legacy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from tether.core import serde
from tether.core.errors import IdempotencyConflictError
from tether.store.types import RunRecord

IDEMPOTENCY_KEY = "tether_idempotency"
"""Run metadata: ``{parameter: fingerprint}`` of what the run's start asked besides its input.
A ``tether`` name (one the server refuses from clients), never a plain one a user's own
metadata may hold: ``idempotency`` would overwrite theirs."""


class Asked(dict[str, str]):
    """``{parameter: fingerprint}`` of a start (the value kept with its run), and in
    ``legacy`` the fingerprints an older tether kept for the same request (numbers hashed as
    sent): the first is written, either matches."""

    legacy: dict[str, str]


def by_value(value: Any) -> Any:
    """``value`` with every float that holds a whole number as that integer (``2.0`` → ``2``),
    in lists and objects too: JSON numbers by value, whatever the sender wrote."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, Mapping):
        return {k: by_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [by_value(v) for v in value]
    return value


def fingerprints(
    *,
    metadata: Mapping[str, Any] | None,
    queue: str,
    priority: int,
    budget: Mapping[str, Any] | None,
    max_attempts: int | None,
    max_steps: int | None,
    delay: float | None,
) -> Asked:
    """Short fingerprints of a start's parameters (no value given and an empty one agree;
    numbers compared by value)."""
    values: dict[str, Any] = {
        "metadata": dict(metadata or {}),
        "queue": queue,
        "priority": priority,
        "budget": dict(budget) if budget else None,
        "max_attempts": max_attempts,
        "max_steps": max_steps,
        "delay": delay,
    }
    asked = Asked((name, serde.fingerprint(by_value(v))[:16]) for name, v in values.items())
    asked.legacy = {name: serde.fingerprint(v)[:16] for name, v in values.items()}
    return asked


def check_same_request(key: str | None, existing: RunRecord, asked: Mapping[str, str]) -> None:
    """``existing`` is the run an earlier start under ``key`` made (same workflow, tenant and
    input): refuse this start if it asked for any parameter otherwise."""
    kept = existing.metadata.get(IDEMPOTENCY_KEY)
    if not isinstance(kept, Mapping):
        return  # made before fingerprints were kept: its input was all there was to compare
    legacy = cast(Mapping[str, str], getattr(asked, "legacy", {}))
    differ = [
        name
        for name, value in asked.items()
        if name in kept and kept[name] not in (value, legacy.get(name, value))
    ]
    if differ:
        err = IdempotencyConflictError(
            f"idempotency key {key!r} was already used by run {existing.run_id} with another "
            f"{', '.join(differ)}; send the same request again to get that run, or use a new "
            "key for a different request"
        )
        err.fields = differ  # type: ignore[attr-defined]
        raise err
