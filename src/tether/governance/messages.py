"""Signed agent messages: what one agent hands another (a handoff, a child run's input or
output) signed with the sender's Ed25519 key, and checked on receipt.

The signature covers the canonical JSON of the sender, the recipient, the payload, the time
of signing and a random nonce, so a changed payload, another sender or recipient, an old
message or a message replayed twice is refused with a ``MessageSignatureError`` whose
``reason`` says which. ``receive_message`` (``message_guard``) does the check inside a run,
audits it and remembers the nonce in the store.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping, MutableSet
from dataclasses import dataclass
from typing import Any

from tether.core.errors import InvalidInputError, MessageSignatureError
from tether.governance.signing import (
    AgentKey,
    PublicKeyLike,
    canonical_json,
    plain_json,
    public_key,
    signature_ok,
)

DOMAIN = b"tether-agent-message/1\n"
FIELDS = ("sender", "recipient", "payload", "ts", "nonce", "signature")
MAX_SKEW = 30.0
"""Seconds a message may seem to come from the future (clocks of two machines differ)."""


@dataclass(frozen=True, slots=True)
class SignedMessage:
    sender: str
    recipient: str
    payload: Any
    """Plain JSON data (dicts, lists, strings, numbers, booleans, None)."""
    ts: float
    """When it was signed (seconds since the epoch)."""
    nonce: str
    signature: str
    """Ed25519 over ``signed_bytes()``, hex."""

    def signed_bytes(self) -> bytes:
        body = {
            "sender": self.sender,
            "recipient": self.recipient,
            "payload": self.payload,
            "ts": self.ts,
            "nonce": self.nonce,
        }
        return DOMAIN + canonical_json(body, strict=True, where="the message").encode()

    def to_dict(self) -> dict[str, Any]:
        """The message as plain data, e.g. to put in a child run's input or a state field."""
        return {f: getattr(self, f) for f in FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedMessage:
        """Read ``to_dict``'s output back; refuses what is not a signed message."""
        missing = [f for f in FIELDS if f not in data]
        if missing:
            what = "unsigned" if "signature" in missing else "malformed"
            raise MessageSignatureError(
                f"the message is {what}: it lacks {', '.join(missing)}; sign it with "
                "tether.governance.sign_message(key, sender, recipient, payload)",
                reason="unsigned" if what == "unsigned" else "malformed",
                sender=data.get("sender") if isinstance(data.get("sender"), str) else None,
            )
        texts = ("sender", "recipient", "nonce", "signature")
        ts = data["ts"]
        if (
            any(not isinstance(data[f], str) for f in texts)
            or isinstance(ts, bool)
            or not isinstance(ts, int | float)
            or not math.isfinite(ts)  # a NaN time is never too old: replayable forever
        ):
            raise MessageSignatureError(
                "the message is malformed: sender, recipient, nonce and signature must be "
                "strings and ts a finite number",
                reason="malformed",
            )
        return cls(
            data["sender"],
            data["recipient"],
            data["payload"],
            float(ts),
            data["nonce"],
            data["signature"],
        )


def sign_message(
    key: AgentKey, sender: str, recipient: str, payload: Any, *, now: float | None = None
) -> SignedMessage:
    """``payload`` from ``sender`` to ``recipient``, signed with the sender's ``key``."""
    for what, name in (("sender", sender), ("recipient", recipient)):
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"the {what} of a signed message must be a non-empty name")
    body = plain_json(payload, strict=True, where="the message payload")
    ts = float(time.time() if now is None else now)
    if not math.isfinite(ts):
        raise InvalidInputError(f"a signed message's time must be finite, got {now!r}")
    unsigned = SignedMessage(sender, recipient, body, ts, secrets.token_hex(16), "")
    signature = key.sign(unsigned.signed_bytes()).hex()
    return SignedMessage(sender, recipient, body, ts, unsigned.nonce, signature)


def as_signed(message: Any) -> SignedMessage:
    """``message`` as a ``SignedMessage`` (given one, or its ``to_dict()``); anything else is
    refused as unsigned."""
    if isinstance(message, SignedMessage):
        return message
    if isinstance(message, Mapping):
        return SignedMessage.from_dict(message)
    raise MessageSignatureError(
        f"expected a signed message, got a {type(message).__name__}: the sender must sign it "
        "with tether.governance.sign_message(...) and pass message.to_dict()",
        reason="unsigned",
    )


def verify_message(
    message: Any,
    public_keys: Mapping[str, PublicKeyLike],
    *,
    max_age: float | None = 300.0,
    now: float | None = None,
    recipient: str | None = None,
    seen: MutableSet[str] | None = None,
) -> SignedMessage:
    """Check ``message`` (a ``SignedMessage`` or its ``to_dict()``): signed by the key
    ``public_keys`` holds for its sender, for ``recipient`` (when given), at most ``max_age``
    seconds old at ``now`` (None: no limit), its nonce not in ``seen`` (then added). Returns
    the message; raises ``MessageSignatureError`` (``reason``) when it is refused."""
    msg = as_signed(message)
    if max_age is not None and (math.isnan(max_age) or max_age < 0):
        raise InvalidInputError(f"max_age must be >= 0 seconds or None, got {max_age!r}")
    who = f"the message from {msg.sender!r} to {msg.recipient!r}"
    if not math.isfinite(msg.ts):
        raise MessageSignatureError(
            f"{who} is malformed: its time {msg.ts!r} is not finite",
            reason="malformed",
            sender=msg.sender,
        )
    if msg.sender not in public_keys:
        raise MessageSignatureError(
            f"{who} is refused: no public key is known for {msg.sender!r} (known: "
            f"{', '.join(sorted(public_keys)) or 'none'})",
            reason="unknown_sender",
            sender=msg.sender,
        )
    key = public_key(public_keys[msg.sender], repr(msg.sender))
    try:
        raw = bytes.fromhex(msg.signature)
        body = msg.signed_bytes()
    except (ValueError, InvalidInputError):
        raw, body = b"", b""
    if not raw or not signature_ok(key, raw, body):
        raise MessageSignatureError(
            f"{who} is refused: its signature does not verify with {msg.sender!r}'s key (the "
            "message was changed after signing, or signed by another key)",
            reason="bad_signature",
            sender=msg.sender,
        )
    if recipient is not None and msg.recipient != recipient:
        raise MessageSignatureError(
            f"{who} is refused: it is addressed to {msg.recipient!r}, not to {recipient!r}",
            reason="wrong_recipient",
            sender=msg.sender,
        )
    at = time.time() if now is None else now
    if max_age is not None and at - msg.ts > max_age:
        raise MessageSignatureError(
            f"{who} is refused: it was signed {at - msg.ts:.0f} s ago, more than max_age "
            f"{max_age:g} s; have the sender sign it again",
            reason="expired",
            sender=msg.sender,
        )
    if msg.ts - at > MAX_SKEW:
        raise MessageSignatureError(
            f"{who} is refused: it claims to be signed {msg.ts - at:.0f} s in the future",
            reason="future",
            sender=msg.sender,
        )
    if seen is not None:
        if msg.nonce in seen:
            raise MessageSignatureError(
                f"{who} is refused: it was received before (nonce {msg.nonce}): a replay",
                reason="replayed",
                sender=msg.sender,
            )
        seen.add(msg.nonce)
    return msg
