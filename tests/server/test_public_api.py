"""The public surface of ``tether.server``: pinned and importable."""

from __future__ import annotations

import tether.server as server

EXPECTED = sorted(
    ["SCOPES", "KeyVerifier", "Principal", "ServerSettings", "Services", "create_app", "create_key"]
)


def test_public_names_are_pinned() -> None:
    assert sorted(server.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(server, name) is not None
