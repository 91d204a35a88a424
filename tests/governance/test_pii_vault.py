"""The PII vault: round trip, one token per value per run, nothing readable without the key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError, PiiKeyError
from tether.governance import PiiDetector, PiiKey, PiiVault
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing.store_helpers import create

PATTERNS = PiiDetector(ner=False)
TEXT = "Mail ada@example.com or call (415) 555-0132; card 4111 1111 1111 1111, ada@example.com."


async def test_round_trip_with_stable_typed_tokens() -> None:
    vault = PiiVault(MemoryStore(), PiiKey.generate(), detector=PATTERNS)
    red, counts = await vault.redact("r1", TEXT)
    assert red == (
        "Mail <EMAIL_ADDRESS_1> or call <PHONE_NUMBER_1>; card <CREDIT_CARD_1>, <EMAIL_ADDRESS_1>."
    )
    assert counts == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1, "CREDIT_CARD": 1}
    again, _ = await vault.redact("r1", "bob@example.com and ada@example.com")
    assert again == "<EMAIL_ADDRESS_2> and <EMAIL_ADDRESS_1>"
    assert await vault.restore("r1", red) == TEXT
    other, _ = await vault.redact("r2", "bob@example.com")  # another run: its own numbering
    assert other == "<EMAIL_ADDRESS_1>"
    assert await vault.restore("r2", "<EMAIL_ADDRESS_1> <PERSON_9>") == "bob@example.com <PERSON_9>"
    nested = await vault.restore_value("r1", {"to": ["<EMAIL_ADDRESS_2>"], "n": 3})
    assert nested == {"to": ["bob@example.com"], "n": 3}


async def test_the_store_holds_no_plaintext_and_the_key_is_needed(tmp_path: Path) -> None:
    key = PiiKey.generate()
    store = SqliteStore(str(tmp_path / "t.db"))
    await store.setup()
    try:
        vault = PiiVault(store, key, detector=PATTERNS)
        red, _ = await vault.redact("r1", TEXT)
        raw = sqlite3.connect(tmp_path / "t.db")
        rows = raw.execute("SELECT * FROM tether_pii_vault").fetchall()
        assert len(rows) == 3
        dump = b"".join(repr(r).encode() + (r[4] if isinstance(r[4], bytes) else b"") for r in rows)
        for secret in (b"ada@example.com", b"555-0132", b"4111", key.encode()):
            assert secret not in dump
        assert key not in repr(raw.execute("SELECT * FROM tether_pii_keys").fetchall())
        raw.close()
        # another key: refused with a typed error, for the agent's path and the human's view
        wrong = PiiVault(store, PiiKey.generate(), detector=PATTERNS)
        with pytest.raises(PiiKeyError, match="sealed with another key") as err:
            await wrong.restore("r1", red)
        assert err.value.reason == "wrong_key"
        with pytest.raises(PiiKeyError):
            await wrong.redact("r1", "eve@example.com")
        with pytest.raises(PiiKeyError, match="sealed with another key"):
            await vault.reveal("r1", red, PiiKey.generate())
        assert await PiiVault(store).reveal("r1", red, key) == TEXT  # the approver's key
    finally:
        await store.close()


async def test_a_tampered_row_does_not_open(tmp_path: Path) -> None:
    key = PiiKey.generate()
    store = SqliteStore(str(tmp_path / "t.db"))
    await store.setup()
    try:
        vault = PiiVault(store, key, detector=PATTERNS)
        red, _ = await vault.redact("r1", "a@example.com then b@example.com")
        raw = sqlite3.connect(tmp_path / "t.db")
        # swap the two sealed values: each is bound to its own row
        (s1,), (s2,) = raw.execute("SELECT sealed FROM tether_pii_vault ORDER BY number").fetchall()
        raw.execute("UPDATE tether_pii_vault SET sealed = ? WHERE number = 1", (s2,))
        raw.execute("UPDATE tether_pii_vault SET sealed = ? WHERE number = 2", (s1,))
        raw.commit()
        raw.close()
        with pytest.raises(PiiKeyError) as err:
            await vault.restore("r1", red)
        assert err.value.reason == "tampered"
    finally:
        await store.close()


async def test_keys_come_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_PII_KEY", raising=False)
    vault = PiiVault(MemoryStore(), detector=PATTERNS)
    with pytest.raises(PiiKeyError, match="TETHER_PII_KEY") as err:
        await vault.redact("r1", "ada@example.com")
    assert err.value.reason == "missing"
    for bad in ("short", "", "x" * 44):
        with pytest.raises(PiiKeyError, match="32 random bytes") as err:
            PiiKey(bad)
        assert err.value.reason == "malformed"
    key = PiiKey.generate()
    monkeypatch.setenv("TETHER_PII_KEY", key)
    red, _ = await vault.redact("r1", "ada@example.com")
    assert await PiiVault(vault.store, key).restore("r1", red) == "ada@example.com"
    assert key not in repr(PiiKey(key))
    with pytest.raises(ConfigurationError, match="store with a PII vault"):
        PiiVault(object())


async def test_deleting_a_run_deletes_its_vault() -> None:
    store = MemoryStore()
    run_id = (await create(store, "r-del")).run_id
    vault = PiiVault(store, PiiKey.generate(), detector=PATTERNS)
    red, _ = await vault.redact(run_id, "ada@example.com")
    await store.delete_run(run_id)
    assert await store.get_pii(run_id, [("EMAIL_ADDRESS", 1)]) == []
    assert red == "<EMAIL_ADDRESS_1>"
