"""The PII vault's key: where it comes from, and what it seals.

The key is 32 random bytes, written in url-safe base64 (``PiiKey.generate()``), passed in
(``PiiVault(store, key=...)``, ``PiiGuard(key=...)``) or read from ``TETHER_PII_KEY``; it is
never written to the store. Two keys are derived from it (HKDF-SHA256): one encrypts each value
with AES-256-GCM (a fresh 96-bit nonce per value; the vault id and the value's digest are the
associated data, so a sealed value moved to another run or row does not open), the other keys
the HMAC-SHA256 digests the store finds values by and the run's key check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tether.core.errors import PiiKeyError

ENV_VAR = "TETHER_PII_KEY"
NONCE = 12
_CHECK = b"tether-pii-key-check"


class PiiKey:
    """A PII vault key (its ``repr`` never shows it)."""

    __slots__ = ("_aead", "_mac")

    def __init__(self, key: str | bytes) -> None:
        raw = _decode(key)
        okm = HKDF(hashes.SHA256(), 64, salt=None, info=b"tether-pii-vault v1").derive(raw)
        self._aead = AESGCM(okm[:32])
        self._mac = okm[32:]

    @staticmethod
    def generate() -> str:
        """A new random key, as ``TETHER_PII_KEY`` takes it."""
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()

    @classmethod
    def resolve(cls, key: PiiKey | str | bytes | None = None) -> PiiKey:
        """``key`` itself, or the one in ``TETHER_PII_KEY``; ``PiiKeyError`` when neither."""
        if isinstance(key, PiiKey):
            return key
        if key is None:
            key = os.environ.get(ENV_VAR) or None
            if key is None:
                raise PiiKeyError(
                    f"the PII vault needs a key: pass key=... or set {ENV_VAR} (make one with "
                    "`python -c 'from tether.governance import PiiKey; print(PiiKey.generate())'`"
                    "); keep it out of the database",
                    reason="missing",
                )
        return cls(key)

    def digest(self, entity_type: str, value: str) -> str:
        """The keyed hash the store finds ``value`` by (hex)."""
        msg = entity_type.encode() + b"\0" + value.encode()
        return hmac.new(self._mac, msg, hashlib.sha256).hexdigest()

    @property
    def check(self) -> str:
        """Tells this key apart from another without revealing it (a run records it)."""
        return hmac.new(self._mac, _CHECK, hashlib.sha256).hexdigest()[:32]

    def seal(self, vault_id: str, digest: str, value: str) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return nonce + self._aead.encrypt(nonce, value.encode(), _aad(vault_id, digest))

    def open(self, vault_id: str, digest: str, sealed: bytes) -> str:
        try:
            value = self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], _aad(vault_id, digest))
        except InvalidTag:
            raise PiiKeyError(
                f"a value in the PII vault of run {vault_id!r} does not decrypt with this key: "
                "it was sealed with another key or the stored row was altered",
                reason="tampered",
                run_id=vault_id,
            ) from None
        return value.decode()

    def __repr__(self) -> str:
        return f"PiiKey(check={self.check[:8]}...)"


def _aad(vault_id: str, digest: str) -> bytes:
    return vault_id.encode() + b"\0" + digest.encode()


def _decode(key: object) -> bytes:
    if not isinstance(key, str | bytes):
        raise PiiKeyError(
            f"a PII vault key is a str (url-safe base64) or 32 bytes, got {type(key).__name__}",
            reason="malformed",
        )
    if isinstance(key, bytes) and len(key) == 32:
        return key
    text = key.decode() if isinstance(key, bytes) else key
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError, UnicodeError):
        raw = b""
    if len(raw) != 32:
        raise PiiKeyError(
            "a PII vault key is 32 random bytes in url-safe base64 (44 characters); got "
            f"{'an empty value' if not text else f'{len(text)} characters that are not one'}: "
            "make one with PiiKey.generate()",
            reason="malformed",
        )
    return raw
