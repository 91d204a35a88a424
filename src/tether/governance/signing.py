"""Canonical JSON and Ed25519 agent keys: what the audit log hashes and agent messages sign.

Canonical JSON sorts keys, has no whitespace and escapes every non-ASCII character, so equal
values encode to equal bytes on every machine (and a NUL character survives any database).
Keys use ``cryptography``'s Ed25519: nothing here is hand-rolled crypto.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.core.errors import ConfigurationError, InvalidInputError

_SCALARS = frozenset({str, int, bool, type(None)})
"""Types ``_plain`` hands back as they are (exactly these: a subclass takes the long way), so
a mapping's or list's items of these types need no call (nor the path text one would name)."""


def _plain(value: Any, strict: bool, where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if strict:
            raise InvalidInputError(f"{where} holds {value!r}, which JSON cannot carry")
        return repr(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                if strict:
                    raise InvalidInputError(f"{where} has a non-string key {k!r}: use strings")
                k = str(k)
            out[k] = (
                v
                if type(v) in _SCALARS
                else _plain(v, strict, f"{where}[{k!r}]" if strict else where)
            )
        return out
    if isinstance(value, list | tuple):
        return [
            v if type(v) in _SCALARS else _plain(v, strict, f"{where}[{i}]" if strict else where)
            for i, v in enumerate(value)
        ]
    if strict:
        raise InvalidInputError(
            f"{where} holds a {type(value).__name__}, which is not JSON: pass dicts, lists, "
            "strings, numbers, booleans and None"
        )
    if isinstance(value, enum.Enum):
        return _plain(value.value, strict, where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value), strict, where)
    if isinstance(value, set | frozenset):
        return sorted((_plain(v, strict, where) for v in value), key=repr)
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def plain_json(value: Any, *, strict: bool = False, where: str = "the value") -> Any:
    """``value`` as plain JSON data. Lenient (the audit log) writes what JSON cannot carry as
    text; ``strict`` (signed messages, which must verify after transport) refuses it."""
    return _plain(value, strict, where)


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
"""What ``json.dumps`` with these settings builds on every call (an encoder holds no state
between calls: one serves every caller)."""


_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (
    None
    if _C_ENCODER is None
    else _C_ENCODER(
        None, _CANONICAL.default, encode_basestring_ascii, None, ":", ",", True, False, False
    )
)
"""``_CANONICAL``'s C encoder, made once instead of on each call (``JSONEncoder.iterencode``
makes one per call). Without the circular-reference check: it only ever sees what
``plain_json`` built, a fresh tree without cycles (a cycle is a ``RecursionError`` there)."""


def canonical_json(value: Any, *, strict: bool = False, where: str = "the value") -> str:
    """The canonical JSON text of ``value`` (see ``plain_json`` for ``strict``)."""
    if type(value) is dict:  # most values are plain JSON already: written in one pass
        text = _plain_text(value)
        if text is not None:
            return text
    plain = _plain(value, strict, where)
    if _ENCODE is None or type(plain) is str:
        return _CANONICAL.encode(plain)
    return "".join(_ENCODE(plain, 0))


def _plain_text(value: Any) -> str | None:
    """The canonical JSON text of ``value`` when it is plain JSON already (exact ``dict``s with
    ``str`` keys, ``list``s, tuples, ``str``, ``int``, finite ``float``, ``bool``, None), the
    very text ``_ENCODE`` writes for it (keys sorted, ``encode_basestring_ascii`` strings,
    ``int.__repr__`` and ``float.__repr__`` numbers), without ``_plain``'s copy; None as soon
    as anything else is met (``_plain`` converts it first: the long way)."""
    t = type(value)
    if t is str:
        return _ESCAPE(value)
    if t is dict:
        keys = list(value)
        for k in keys:
            if type(k) is not str:
                return None
        keys.sort()
        parts = []
        for k in keys:
            v = value[k]
            if type(v) is str:
                text: str | None = _ESCAPE(v)
            else:
                text = _plain_text(v)
                if text is None:
                    return None
            parts.append(f"{_ESCAPE(k)}:{text}")
        return "{" + ",".join(parts) + "}"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if t is int:
        return int.__repr__(value)
    if t is float:
        return float.__repr__(value) if math.isfinite(value) else None
    if t is list or t is tuple:
        items = []
        for v in value:
            text = _plain_text(v)
            if text is None:
                return None
            items.append(text)
        return "[" + ",".join(items) + "]"
    return None


_ESCAPE: Callable[[str], str] = encode_basestring_ascii


class AgentKey:
    """An agent's Ed25519 signing key. Share ``public_hex`` with the receivers; keep the
    private key out of the database (``save`` writes it to a file readable by its owner)."""

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> AgentKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> AgentKey:
        if len(raw) != 32:
            raise ConfigurationError(
                f"an Ed25519 private key is 32 bytes, got {len(raw)}: use AgentKey.generate()"
            )
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load(cls, path: str | Path) -> AgentKey:
        """Read a key ``save`` wrote (64 hex digits)."""
        try:
            text = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the agent key file {path}: {exc}") from None
        try:
            return cls.from_bytes(bytes.fromhex(text))
        except ValueError:
            raise ConfigurationError(
                f"{path} does not hold an agent key (64 hex digits, as AgentKey.save writes)"
            ) from None

    def save(self, path: str | Path) -> None:
        """Write the private key (hex) to ``path``, readable only by its owner."""
        p = Path(path)
        p.touch(mode=0o600, exist_ok=True)
        p.chmod(0o600)
        p.write_text(self.private_bytes().hex() + "\n")

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    @property
    def public_hex(self) -> str:
        """The public key as 64 hex digits (what ``verify_message`` is given)."""
        return self.public_key.public_bytes_raw().hex()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"AgentKey(public={self.public_hex[:16]}...)"


PublicKeyLike = AgentKey | Ed25519PublicKey | bytes | str


def public_key(value: PublicKeyLike, who: str = "an agent") -> Ed25519PublicKey:
    """An Ed25519 public key from an ``AgentKey``, a key object, 32 raw bytes or 64 hex digits."""
    if isinstance(value, AgentKey):
        return value.public_key
    if isinstance(value, Ed25519PublicKey):
        return value
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
        if len(raw) != 32:
            raise ValueError(len(raw))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise ConfigurationError(
            f"the public key of {who} is not an Ed25519 public key (32 bytes or 64 hex digits, "
            "e.g. AgentKey.public_hex)"
        ) from None


def signature_ok(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
