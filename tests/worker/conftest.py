from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def throwaway_pg() -> Iterator[Any]:
    """A PostgreSQL server of this module's own (``pgserver``), never the shared one: the worker
    tests SIGKILL processes holding its connections. Skips when it cannot start."""
    try:
        from tests.durability.throwaway_pg import ThrowawayPostgres

        server = ThrowawayPostgres.create()
    except Exception as exc:  # not installed, no binaries for this platform, cannot run
        pytest.skip(f"a throwaway PostgreSQL (pip install pgserver) cannot start here: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(throwaway_pg: Any) -> str:
    """A store URL on the throwaway server, in a schema of this test's own."""
    host = throwaway_pg.datadir
    return f"postgresql://postgres@/postgres?host={host}&schema=w_{uuid.uuid4().hex[:10]}"
