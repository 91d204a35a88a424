"""Signed messages inside runs: verify at a node, audit the outcome, refuse replays durably.

A parent signs a child run's input in one of its nodes (``sign_message(...).to_dict()`` into a
state field the child workflow shares); the child's first node is ``verify_input(keys)``, or
calls ``receive_message`` itself. Each check is audited (``message_verified``,
``message_refused``, ``message_unsigned``) and the message's nonce is claimed in the store for
the receiving run: the same message delivered to another run is refused as replayed, while the
same run checking it again (its node re-ran after a crash) passes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tether.core.errors import ConfigurationError, MessageSignatureError
from tether.governance.audit import audit_store
from tether.governance.messages import verify_message
from tether.governance.scope import RunGovernor, RunScope
from tether.governance.signing import PublicKeyLike, canonical_json


def _scope(ctx: Any) -> RunScope:
    governor = getattr(ctx, "governor", None)
    if not isinstance(governor, RunGovernor):
        raise ConfigurationError(
            "receiving a signed message needs a governed run (its checks are audited): compile "
            "the workflow with governance=Governance(...)"
        )
    return governor.scope(ctx)


async def receive_message(
    ctx: Any,
    message: Any,
    public_keys: Mapping[str, PublicKeyLike],
    *,
    recipient: str | None = None,
    max_age: float | None = 300.0,
    required: bool = True,
) -> Any:
    """Verify ``message`` at a node of a governed run (``ctx``: the node's ``RunContext``) and
    return its payload. ``required=False`` lets an unsigned message through (audited as
    ``message_unsigned``) and returns it as it is."""
    scope = _scope(ctx)
    now = scope.clock.now()
    where = {"node": getattr(ctx, "node", None), "step": getattr(ctx, "step", None)}
    try:
        msg = verify_message(message, public_keys, max_age=max_age, now=now, recipient=recipient)
        store = audit_store(scope.store)
        holder = await store.claim_message_nonce(msg.nonce, scope.run.run_id, msg.sender, now)
        if holder != scope.run.run_id:
            raise MessageSignatureError(
                f"the message from {msg.sender!r} to {msg.recipient!r} is refused: run "
                f"{holder!r} received it already (nonce {msg.nonce}): a replay",
                reason="replayed",
                sender=msg.sender,
            )
    except MessageSignatureError as exc:
        if exc.reason == "unsigned" and not required:
            await scope.audit("message_unsigned", where)
            return message
        refused = {"reason": exc.reason, "sender": exc.sender, "error": str(exc), **where}
        await scope.audit("message_refused", refused)
        raise
    digest = hashlib.sha256(canonical_json(msg.payload).encode()).hexdigest()
    verified = {
        "sender": msg.sender,
        "recipient": msg.recipient,
        "nonce": msg.nonce,
        "signed_at": msg.ts,
        "payload_sha256": digest,
        **where,
    }
    await scope.audit("message_verified", verified)
    return msg.payload


def verify_input(
    public_keys: Mapping[str, PublicKeyLike],
    *,
    field: str = "message",
    into: str = "payload",
    recipient: str | None = None,
    max_age: float | None = 300.0,
    required: bool = True,
) -> Callable[[Mapping[str, Any], Any], Awaitable[dict[str, Any]]]:
    """A node checking the signed message in state field ``field`` and writing its payload
    to ``into``: put it first in a child workflow whose input a parent signed."""

    async def verify_signed_input(state: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        payload = await receive_message(
            ctx,
            state.get(field),
            public_keys,
            recipient=recipient,
            max_age=max_age,
            required=required,
        )
        return {into: payload}

    return verify_signed_input
