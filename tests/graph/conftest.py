from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tether import Runtime
from tether.store.memory import MemoryStore


@pytest.fixture
async def rt() -> AsyncIterator[Runtime]:
    async with Runtime(MemoryStore(), recover=False) as runtime:
        yield runtime
