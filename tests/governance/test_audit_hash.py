"""The audit record's hash, written field by field on the hot path, is the SHA-256 of exactly the
JSON text the chain has always covered (``_HASHED``), so chains written before verify; and the
record's texts, checked once per ``(kind, tenant, run_id)``, are still refused when bad."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest

from tether.core.errors import InvalidInputError
from tether.governance import StoreAuditLog
from tether.governance.audit import _HASHED, GENESIS, record_hash
from tether.store.memory import MemoryStore

TEXTS = [
    "",
    "acme",
    "café ✓ \u2028 \U0001f600",
    'quote " backslash \\ slash /',
    "ctl \x01\x1f\n\t\r\b\f",
    "lone \udc80 surrogate",
    '{"a":[1,2.5,null],"b":"\\u00e9"}',
]
NUMBERS: list[tuple[Any, Any]] = [
    (1, 1_700_000_000.123456),
    (2**62, 0.0),
    (7, -1.5e-300),
    (3, 1e22),
    (4, 1_700_000_000),  # an int ts (append takes one)
    (-1, math.nan),  # a row read back with garbage in seq and ts (sql_audit._row)
    (5, math.inf),
    (True, 1.0),  # not an int seq: the encoder's own text
]


def encoder_hash(*body: Any) -> str:
    return hashlib.sha256(_HASHED.encode(["tether-audit/1", *body]).encode()).hexdigest()


@pytest.mark.parametrize(("seq", "ts"), NUMBERS)
@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("run_id", [None, "r1"])
def test_the_hash_covers_the_encoders_text(seq: Any, ts: Any, text: str, run_id: Any) -> None:
    got = record_hash(seq, ts, text, run_id, "policy_decision", text, GENESIS)
    assert got == encoder_hash(seq, ts, text, run_id, "policy_decision", text, GENESIS)
    got = record_hash(seq, ts, "t", text or None, text or "k", "{}", text)
    assert got == encoder_hash(seq, ts, "t", text or None, text or "k", "{}", text)


class Kind(str):
    """A str subclass: the encoder's path, same text."""


def test_a_str_subclass_hashes_as_its_text() -> None:
    assert record_hash(1, 1.0, Kind("t"), Kind("r"), Kind("k"), "{}", GENESIS) == record_hash(
        1, 1.0, "t", "r", "k", "{}", GENESIS
    )


async def test_bad_texts_are_refused_after_good_ones_were_seen() -> None:
    log = StoreAuditLog(MemoryStore())
    await log.append("policy_decision", {}, tenant="acme", run_id="r1", ts=1.0)
    await log.append("policy_decision", {}, tenant="acme", run_id="r1", ts=2.0)
    for kind, tenant, run_id in [
        ("policy\x00decision", "acme", "r1"),
        ("policy_decision", "ac\x00me", "r1"),
        ("policy_decision", "acme", "r\udc801"),
        ("", "acme", "r1"),
        ("policy_decision", 7, "r1"),
    ]:
        with pytest.raises(InvalidInputError):
            await log.append(kind, {}, tenant=tenant, run_id=run_id, ts=3.0)
    # the texts were seen and passed: a bad time is still refused, before anything is written
    for ts in (math.nan, math.inf, True, "now"):
        with pytest.raises(InvalidInputError, match="finite Unix time"):
            await log.append("policy_decision", {}, tenant="acme", run_id="r1", ts=ts)
    assert (await log.verify("acme")).ok
    assert len((await log.records(tenant="acme")).records) == 2
