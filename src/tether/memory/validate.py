"""Checks at the memory plane's boundary: every bad argument becomes an InvalidInputError that
says what was wrong and how to fix it, before anything is written."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from tether.core.errors import InvalidInputError
from tether.memory.types import MAX_TEXT, MemoryScope, Provenance, is_unicode

MAX_K = 1000
MAX_IDS = 10_000
MAX_NAME = 1000
"""Characters a fact's subject, relation or object may hold."""
MAX_METADATA_BYTES = 64 * 1024
"""A memory plane's default bound on a memory's metadata: bytes of its compact JSON (UTF-8).
``MemoryPlane(max_metadata_bytes=...)`` raises or lowers it, up to ``METADATA_CEILING``."""
METADATA_CEILING = 1024 * 1024
"""The most metadata (bytes of compact JSON) any memory store takes, plane or not: metadata is
a few labels and references to carry with a memory, not a place for documents."""
_SURROGATE = (
    "{what} holds a lone surrogate (such as '\\ud800'), which is not Unicode text and no "
    "database stores; decode the bytes it came from with errors='replace' or fix its source"
)


_LOW = 1 << 56
_last_id = (0, 0)
_id_lock = threading.Lock()


def new_memory_id() -> str:
    """A 26-char time-sortable id: a 48-bit millisecond prefix and 56 low bits, random for the
    first id of a millisecond and counting up from it after (as monotonic ULIDs do), so the ids
    one process makes sort in the order it made them. Searches break ties by the smaller id:
    "added first", the same on every store filled the same way (with random low bits a tie
    came out in a different order on each fresh store)."""
    global _last_id
    with _id_lock:
        ms, low = int(time.time() * 1000), int.from_bytes(os.urandom(7), "big") >> 1
        last_ms, last_low = _last_id
        if ms <= last_ms:  # same millisecond, or the clock stepped back: count up
            ms, low = last_ms, last_low + 1
            if low >= _LOW:  # 2**55 ids in one millisecond: borrow the next one
                ms, low = ms + 1, 0
        _last_id = (ms, low)
    return f"{ms:012x}{low:014x}"


def memory_id(value: object) -> str:
    """A caller-chosen memory id (``NewMemory.id``)."""
    if not isinstance(value, str) or not value or len(value) > 64 or not value.isprintable():
        raise InvalidInputError(
            f"a memory id must be a non-empty printable string of at most 64 characters, "
            f"got {value!r:.80}"
        )
    if not is_unicode(value):
        raise InvalidInputError(_SURROGATE.format(what="a memory id"))
    return value


def idempotent_memory_id(key: str, scope: MemoryScope, text: str) -> str:
    """The id of memory ``text`` written in ``scope`` under idempotency (journal) key ``key``:
    26 hex characters, as ``new_memory_id``'s, the same for every retry of the call. The scope
    and the text count, not the key alone: two tenants (or agents, threads) using one key never
    meet on one id (an id is unique in the store: the second would be refused), and a key used
    again for another text (a run id reused after its run was deleted, a client's idempotency
    key sent with another request) stores that text instead of handing back the old memory."""
    import hashlib

    parts = [key, scope.tenant, scope.agent, scope.run_id, scope.thread_id, text]
    encoded = json.dumps(parts, separators=(",", ":"))  # ASCII: a lone surrogate is refused later
    return hashlib.sha256(f"tether-memory:2:{encoded}".encode()).hexdigest()[:26]


def scope(value: object) -> MemoryScope:
    if not isinstance(value, MemoryScope):
        raise InvalidInputError(
            f"scope must be a MemoryScope, got {type(value).__name__}; "
            "use MemoryScope(tenant=..., agent=..., run_id=..., thread_id=...)"
        )
    return value


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"a memory's text must be a non-empty string, got {value!r:.80}")
    if len(value) > MAX_TEXT:
        raise InvalidInputError(
            f"a memory's text holds {len(value)} characters, more than {MAX_TEXT}; split it "
            "or summarise it first"
        )
    if "\x00" in value:
        raise InvalidInputError("a memory's text must not contain NUL characters")
    if not is_unicode(value):
        raise InvalidInputError(_SURROGATE.format(what="a memory's text"))
    return value


def importance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"importance must be a number in 0..1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"importance must be in 0..1, got {value}")
    return float(value)


def metadata(value: object, limit: int = METADATA_CEILING) -> dict[str, Any]:
    """``value`` as a memory's metadata: a JSON-serialisable dict with string keys whose
    compact JSON holds at most ``limit`` bytes."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError("metadata must be a dict with string keys")
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata must be JSON-serialisable ({exc})") from None
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidInputError(
            f"a memory's metadata is {size:,} bytes as JSON, more than the limit of {limit:,}; "
            "keep large data elsewhere and put a reference to it in metadata, or raise the "
            f"limit with MemoryPlane(max_metadata_bytes=...) (at most {METADATA_CEILING:,}, "
            "what any memory store takes)"
        )
    return dict(value)


def provenance(value: object) -> Provenance:
    if value is None:
        return Provenance()
    if isinstance(value, dict):
        return Provenance.from_dict(value)
    if not isinstance(value, Provenance):
        raise InvalidInputError(f"provenance must be a Provenance or None, got {value!r:.80}")
    return value


def timestamp(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(value)


def k(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise InvalidInputError(f"k must be an integer in 1..{MAX_K}, got {value!r}")
    return value


def limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IDS:
        raise InvalidInputError(f"limit must be an integer in 1..{MAX_IDS}, got {value!r}")
    return value


def query(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"query must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InvalidInputError(f"query holds {len(value)} characters, more than {MAX_TEXT}")
    if not is_unicode(value):
        raise InvalidInputError(_SURROGATE.format(what="the query"))
    return value.replace("\x00", " ")


def ids(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInputError("ids must be a list of memory ids (not a single string)")
    if len(value) > MAX_IDS:
        raise InvalidInputError(f"at most {MAX_IDS} ids at a time, got {len(value)}")
    if not all(isinstance(i, str) for i in value):
        raise InvalidInputError("ids must all be strings")
    return list(dict.fromkeys(value))


def name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise InvalidInputError(
            f"a fact's {what} must be a non-empty string of at most {MAX_NAME} characters, "
            f"got {value!r:.80}"
        )
    if "\x00" in value:
        raise InvalidInputError(f"a fact's {what} must not contain NUL characters")
    if not is_unicode(value):
        raise InvalidInputError(_SURROGATE.format(what=f"a fact's {what}"))
    return value


def depth(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise InvalidInputError(f"depth must be an integer in 1..10, got {value!r}")
    return value


def direction(value: object) -> str:
    if value not in ("out", "in", "both"):
        raise InvalidInputError(f"direction must be 'out', 'in' or 'both', got {value!r}")
    return str(value)


def relations(value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidInputError("relations must be None or a non-empty list of relation names")
    return [name(r, "relation") for r in value]
