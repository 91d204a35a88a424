"""Approvers' Ed25519 keys and what an approval signature covers.

A signature is made over ``PREFIX`` + the canonical JSON (sorted keys, no whitespace, UTF-8) of
``{approval_id, decision, intent, intent_hash, expires_at}``: the exact call (tool, canonical
arguments, run, step, node, call key), this request, approve or reject, and until when the
signer vouches for it. It travels as one token, ``ed25519:<expires_at>:<base64url signature>``.
Keys and signatures are ``cryptography``'s Ed25519: nothing here is hand-rolled crypto.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.core import serde
from tether.core.errors import ApprovalSignatureError, InvalidInputError
from tether.core.finite import check_number, is_number
from tether.store.approvals import ApprovalRecord

PREFIX = b"tether-approval-v1\n"
SCHEME = "ed25519"
DECISIONS = ("approve", "reject")
DEFAULT_VALID_FOR = 3600.0
"""Seconds a signature made by ``sign`` vouches for its decision, unless told otherwise."""


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes of a JSON-like value (pydantic models and dataclasses as JSON)."""
    return orjson.dumps(serde.loads(serde.dumps(value)), option=orjson.OPT_SORT_KEYS)


def intent_hash(intent: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(intent)).hexdigest()


def payload(approval_id: str, intent: dict[str, Any], decision: str, expires_at: float) -> bytes:
    """The exact bytes a signature covers."""
    body = {
        "approval_id": approval_id,
        "decision": decision,
        "intent": intent,
        "intent_hash": intent_hash(intent),
        "expires_at": float(expires_at),
    }
    return PREFIX + canonical(body)


def generate_key() -> Ed25519PrivateKey:
    """A new approver key pair (keep the private key; register ``public_pem(key)``)."""
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey | str | bytes) -> str:
    """The PEM of a public key (from a private key, a public key or PEM text, checked)."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        key = load_public_key(key)
    raw = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return raw.decode("ascii")


def key_file(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The approver key kept in the file ``path``: loaded when it exists, else made and
    written there (mode 0600, never over a file another process wrote meanwhile)."""
    path = Path(path)
    try:
        return load_private_key(path.read_bytes(), str(path))
    except FileNotFoundError:
        pass
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return load_private_key(path.read_bytes(), str(path))
    except OSError as exc:
        raise InvalidInputError(f"cannot write the key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key))
    return key


def load_private_key(pem: str | bytes, where: str = "the key") -> Ed25519PrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{where} is not an unencrypted PEM private key ({exc}); make one with "
            "`tether approvals keygen --out FILE`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(f"{where} is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(pem: str | bytes, where: str = "the public key") -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{where} is not a PEM public key ({exc}); `tether approvals keygen` writes one "
            "next to the private key (FILE.pub)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInputError(f"{where} is a {type(key).__name__}, not an Ed25519 key")
    return key


def sign(
    private_key: Ed25519PrivateKey,
    approval: ApprovalRecord,
    decision: str = "approve",
    *,
    valid_for: float = DEFAULT_VALID_FOR,
    expires_at: float | None = None,
    now: float | None = None,
) -> str:
    """The signature token of ``decision`` on ``approval``, valid until ``expires_at`` (or
    ``valid_for`` seconds after ``now``, default the wall clock)."""
    if decision not in DECISIONS:
        raise InvalidInputError(f"decision must be one of {DECISIONS}, got {decision!r}")
    if not isinstance(private_key, Ed25519PrivateKey):
        raise InvalidInputError("sign() takes an Ed25519 private key (generate_key())")
    if expires_at is None:
        check_number(
            "valid_for", valid_for, above=True, unit=" of seconds", error=InvalidInputError
        )
    until = expires_at if expires_at is not None else (now or time.time()) + valid_for
    if not is_number(until):  # a signature always expires
        raise InvalidInputError(f"expires_at must be a finite time, got {until!r}")
    sig = private_key.sign(payload(approval.approval_id, approval.intent, decision, until))
    return f"{SCHEME}:{float(until)!r}:{base64.urlsafe_b64encode(sig).decode('ascii')}"


def parse(token: str) -> tuple[float, bytes]:
    """``(expires_at, signature)`` of a token; ApprovalSignatureError when malformed."""
    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    parts = token.strip().split(":") if isinstance(token, str) else []
    try:
        if len(parts) != 3 or parts[0] != SCHEME:
            raise ValueError("not three ':'-separated parts starting with 'ed25519'")
        until = float(parts[1])
        if not math.isfinite(until):  # NaN would never compare as expired
            raise ValueError(f"its expiry {parts[1]!r} is not a finite time")
        sig = base64.urlsafe_b64decode(parts[2].encode("ascii"))
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise ApprovalSignatureError(
            f"malformed signature ({exc}); make it with tether.governance.approvals.sign() or "
            "`tether approvals approve ID --key FILE`"
        ) from None
    return until, sig


def verify(
    public_key: str,
    approval_id: str,
    intent: dict[str, Any],
    decision: str,
    token: str,
    now: float,
) -> float:
    """Check ``token`` against the approver's public key and this exact intent and decision;
    returns its ``expires_at``. Raises ApprovalSignatureError (forged, over anything else,
    expired)."""
    until, sig = parse(token)
    try:
        load_public_key(public_key).verify(sig, payload(approval_id, intent, decision, until))
    except InvalidSignature:
        raise ApprovalSignatureError(
            f"the signature does not verify for approval {approval_id!r} ({decision}): it was "
            "made with another key, or over another request, intent or decision"
        ) from None
    if until <= now:
        raise ApprovalSignatureError(
            f"the signature for approval {approval_id!r} expired at {until} (now {now}); sign again"
        )
    return until
