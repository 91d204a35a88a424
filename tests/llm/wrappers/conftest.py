"""Fixtures of the wrapper tests: a clean circuit-breaker registry around each test (breakers
are shared per provider across a process) and a misbehaving OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tether.llm.wrappers import PROVIDER_BREAKERS

from .flaky_server import FlakyServer


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    PROVIDER_BREAKERS.clear()
    yield
    PROVIDER_BREAKERS.clear()


@pytest.fixture
async def server() -> AsyncIterator[FlakyServer]:
    async with FlakyServer() as s:
        yield s
