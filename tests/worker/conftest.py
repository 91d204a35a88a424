from __future__ import annotations

import uuid
from typing import Any

import pytest


@pytest.fixture
def pg_url(throwaway_pg: Any) -> str:
    """A store URL on the throwaway server, in a schema of this test's own."""
    host = throwaway_pg.datadir
    return f"postgresql://postgres@/postgres?host={host}&schema=w_{uuid.uuid4().hex[:10]}"
