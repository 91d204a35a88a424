"""Checkpoint blobs as stored: compressed when that pays.

A checkpoint's ``delta`` (what the step wrote) and ``snapshot`` (the whole state, now and then)
are JSON (``core.serde``). The ones of at least ``MIN_BYTES`` are deflated (zlib, level 1: about
5 µs for a kilobyte) and stored so when that saves at least a tenth; the rest are stored as
they are. Reading tells the two apart by the first byte: a zlib stream begins with ``0x78``
(``x``), which no JSON text does, so rows written before compression existed read unchanged
and no migration is needed.

Agent state is mostly text (messages, tool results), which deflate shrinks two to four times;
random identifiers in hex about halve. PostgreSQL would compress a value itself only above
about 2 KB (TOAST), and SQLite never does.
"""

from __future__ import annotations

import zlib

MIN_BYTES = 512
"""Blobs shorter than this are stored as they are (compressing them saves little)."""

_ZLIB = b"\x78"
"""The first byte of a zlib stream at deflate's default window (``x``)."""
_WORTH = 0.9


def pack(blob: bytes) -> bytes:
    """``blob`` as stored: deflated when it is at least ``MIN_BYTES`` long and deflating saves
    a tenth or more, else unchanged."""
    if len(blob) < MIN_BYTES:
        return blob
    packed = zlib.compress(blob, 1)
    return packed if len(packed) <= _WORTH * len(blob) else blob


def pack_optional(blob: bytes | None) -> bytes | None:
    return None if blob is None else pack(blob)


def unpack(stored: bytes | bytearray | memoryview | str | None) -> bytes | str | None:
    """The JSON of a stored blob (either form; a text column's value is JSON already); None
    stays None."""
    if stored is None or isinstance(stored, str):
        return stored
    if isinstance(stored, memoryview | bytearray):
        stored = bytes(stored)
    if stored[:1] == _ZLIB:
        return zlib.decompress(stored)
    return stored
