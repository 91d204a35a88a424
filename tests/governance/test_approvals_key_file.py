"""``key_file``: an approver key kept in a file, made once (0600) and loaded after."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.core.errors import InvalidInputError
from tether.governance.approvals import key_file, public_pem


def test_made_once_then_loaded(tmp_path: Path) -> None:
    path = tmp_path / "lead.pem"
    first = key_file(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert public_pem(key_file(path)) == public_pem(first)  # the same key, not a new one


def test_a_file_that_is_not_a_key_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "lead.pem"
    path.write_text("not a key")
    with pytest.raises(InvalidInputError, match="not an unencrypted PEM private key"):
        key_file(path)
    assert path.read_text() == "not a key"


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot write the key file"):
        key_file(tmp_path / "missing-dir" / "lead.pem")
