"""Signed agent messages: a valid message passes; a changed payload, another key, an unknown
sender, an unsigned message, another recipient, an old or replayed one are refused with a
``MessageSignatureError`` naming why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError, InvalidInputError
from tether.governance import AgentKey, MessageSignatureError, sign_message, verify_message

T0 = 1_700_000_000.0
planner, intruder = AgentKey.generate(), AgentKey.generate()
KEYS = {"planner": planner.public_hex}


def signed(payload: object = None, **kw: object) -> dict[str, object]:
    body = (
        {"task": "refund", "order": 7, "notes": ["café", None, 1.5]} if payload is None else payload
    )
    msg = sign_message(planner, "planner", "researcher", body, now=T0)
    return json.loads(json.dumps(msg.to_dict()))  # as it arrives: through JSON


def refused(message: object, reason: str, **kw: object) -> MessageSignatureError:
    with pytest.raises(MessageSignatureError) as info:
        verify_message(message, KEYS, now=T0 + 1, **kw)  # type: ignore[arg-type]
    assert info.value.reason == reason, info.value
    return info.value


def test_a_valid_message_passes_after_transport() -> None:
    got = verify_message(signed(), KEYS, now=T0 + 1, recipient="researcher")
    assert got.payload == {"task": "refund", "order": 7, "notes": ["café", None, 1.5]}
    assert (got.sender, got.recipient, got.ts) == ("planner", "researcher", T0)
    # the SignedMessage itself verifies too, and tuples travel as lists
    msg = sign_message(planner, "planner", "researcher", {"pair": (1, 2)}, now=T0)
    assert verify_message(msg, {"planner": planner}, now=T0).payload == {"pair": [1, 2]}


def test_a_changed_payload_is_refused() -> None:
    m = signed()
    m["payload"] = {"task": "refund", "order": 8, "notes": ["café", None, 1.5]}
    err = refused(m, "bad_signature")
    assert "changed after signing" in str(err) and err.sender == "planner"


@pytest.mark.parametrize("field", ["sender", "recipient", "ts", "nonce"])
def test_any_changed_envelope_field_is_refused(field: str) -> None:
    m = signed()
    m[field] = {"sender": "planner2", "recipient": "other", "ts": T0 + 0.5, "nonce": "00"}[field]
    keys = {**KEYS, "planner2": planner.public_hex}
    with pytest.raises(MessageSignatureError) as info:
        verify_message(m, keys, now=T0 + 1)
    assert info.value.reason == "bad_signature"


def test_a_message_signed_by_another_key_is_refused() -> None:
    forged = sign_message(intruder, "planner", "researcher", {"task": "refund"}, now=T0)
    refused(forged.to_dict(), "bad_signature")
    m = signed()
    m["signature"] = "zz" + str(m["signature"])[2:]  # not even hex
    refused(m, "bad_signature")


def test_an_unknown_sender_is_refused() -> None:
    m = sign_message(intruder, "mallory", "researcher", {"x": 1}, now=T0)
    err = refused(m, "unknown_sender")
    assert "known: planner" in str(err)


def test_unsigned_or_malformed_messages_are_refused() -> None:
    m = signed()
    del m["signature"]
    refused(m, "unsigned")
    refused({"task": "refund"}, "unsigned")
    refused("please refund order 7", "unsigned")
    refused(None, "unsigned")
    bad = signed()
    bad["ts"] = "yesterday"
    refused(bad, "malformed")
    no_nonce = signed()
    del no_nonce["nonce"]
    refused(no_nonce, "malformed")


def test_another_recipient_is_refused() -> None:
    refused(signed(), "wrong_recipient", recipient="writer")


def test_an_old_or_future_message_is_refused() -> None:
    m = signed()
    assert verify_message(m, KEYS, now=T0 + 300, max_age=300).payload
    err = refused(m, "expired", max_age=0.5)
    assert "sign it again" in str(err)
    with pytest.raises(MessageSignatureError) as info:
        verify_message(m, KEYS, now=T0 - 3600)
    assert info.value.reason == "future"
    assert verify_message(m, KEYS, now=T0 + 10**6, max_age=None).sender == "planner"


def test_a_message_whose_time_or_max_age_is_not_finite_is_refused() -> None:
    """A NaN max_age let a message of any age pass (before: taken); a NaN time cannot be
    signed (JSON cannot carry it) and arrives as malformed (before: a bad signature)."""
    with pytest.raises(InvalidInputError, match="time must be finite"):
        sign_message(planner, "planner", "researcher", {"x": 1}, now=float("nan"))
    wire = {**signed(), "ts": float("nan")}
    assert refused(wire, "malformed", max_age=None)
    with pytest.raises(InvalidInputError, match="max_age"):
        verify_message(signed(), KEYS, now=T0 + 10**6, max_age=float("nan"))


def test_a_replayed_message_is_refused() -> None:
    seen: set[str] = set()
    m = signed()
    verify_message(m, KEYS, now=T0, seen=seen)
    refused(m, "replayed", seen=seen)
    verify_message(signed(), KEYS, now=T0, seen=seen)  # a new message: a new nonce


def test_bad_input_to_signing_and_keys_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not JSON"):
        sign_message(planner, "planner", "researcher", {"when": object()})
    with pytest.raises(InvalidInputError, match="non-empty"):
        sign_message(planner, "", "researcher", {})
    with pytest.raises(ConfigurationError, match="Ed25519 public key"):
        verify_message(signed(), {"planner": "abcd"}, now=T0)
    path = tmp_path / "planner.key"
    planner.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert AgentKey.load(path).public_hex == planner.public_hex
    path.write_text("not a key")
    with pytest.raises(ConfigurationError, match="does not hold an agent key"):
        AgentKey.load(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        AgentKey.load(tmp_path / "missing.key")
