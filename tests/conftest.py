"""Fixtures shared across the test packages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["tests.small_disk"]


@pytest.fixture(scope="module")
def throwaway_pg() -> Iterator[Any]:
    """A PostgreSQL server of the test module's own (``pgserver``), never the shared one: its
    tests stop and restart it, or SIGKILL processes holding its connections (see
    ``tests.durability.throwaway_pg.ThrowawayPostgres``). Skips when it cannot start."""
    try:
        from tests.durability.throwaway_pg import ThrowawayPostgres

        server = ThrowawayPostgres.create()
    except Exception as exc:  # not installed, no binaries for this platform, cannot run
        pytest.skip(f"a throwaway PostgreSQL (pip install pgserver) cannot start here: {exc}")
    try:
        yield server
    finally:
        server.close()
