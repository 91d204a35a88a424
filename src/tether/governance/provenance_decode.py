"""The decoded readings of a piece of content a model could follow (``provenance_text``):
HTML entities, URL escapes, ROT13, and base64 and hex chunks, the chunks also when they are
broken up the way encoded text is usually shown.

A model reads base64 wrapped in lines or cut into groups (``cmVmdW5k IDk5OTkg...``) and hex
written as bytes (``72 65 66``, ``\\x72\\x65``, ``0x7265``) as easily as one unbroken chunk,
so each of those is joined and decoded too. A decoding that is not mostly printable UTF-8 text
is no reading (ordinary words joined up decode to noise).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
from collections.abc import Iterator
from urllib.parse import unquote

_B64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_B64_PIECE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){6,}\b")
_HEX_BYTES = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:\\x|0x)?[0-9a-fA-F]{2}(?:[ \t:,-]|(?=\\x)|$)){6,}"
    r"|(?<![0-9A-Za-z])0x(?:[0-9a-fA-F]{2}){6,}\b"
)
_HEX_NOISE = re.compile(r"\\x|0x|[ \t:,-]")
MIN_CHUNK = 12
"""Characters an encoded chunk needs (shorter ones are everyday words and numbers)."""
MAX_STARTS = 16
"""Pieces of one broken-up base64 run tried as its first (words may precede the chunk)."""


def decodings(text: str) -> Iterator[str]:
    """Each way ``text`` may be encoded, decoded (not normalised; may repeat ``text``)."""
    yield html.unescape(text)
    yield unquote(text)
    yield codecs.decode(text, "rot13")
    for chunk in _B64.findall(text):
        yield _b64(chunk)
    yield from _b64_runs(text)
    for chunk in _HEX.findall(text):
        yield _hex(chunk)
    for m in _HEX_BYTES.finditer(text):
        yield _hex(_HEX_NOISE.sub("", m.group(0)))


def _b64_runs(text: str) -> Iterator[str]:
    """Base64 cut into lines or groups: runs of whitespace-separated pieces, each but the last
    a whole number of 4-character quanta, joined and decoded from each of their first pieces."""
    run: list[str] = []
    for word in [*text.split(), ""]:
        if word and _B64_PIECE.fullmatch(word) and (not run or len(run[-1]) % 4 == 0):
            run.append(word)
            if "=" not in word:
                continue
        if len(run) >= 2:
            for start in range(min(len(run) - 1, MAX_STARTS)):
                joined = "".join(run[start:])
                if len(joined) < MIN_CHUNK:
                    break
                decoded = _b64(joined)
                if decoded:
                    yield decoded
                    break
        run = [word] if word and _B64_PIECE.fullmatch(word) and "=" not in word else []


def _printable(raw: bytes) -> str:
    try:
        out = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    shown = sum(ch.isprintable() or ch.isspace() for ch in out)
    return out if out and shown >= 0.9 * len(out) else ""


def _b64(chunk: str) -> str:
    padded = chunk + "=" * (-len(chunk) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return _printable(decode(padded))
        except (binascii.Error, ValueError):
            continue
    return ""


def _hex(chunk: str) -> str:
    try:
        return _printable(bytes.fromhex(chunk))
    except ValueError:
        return ""
