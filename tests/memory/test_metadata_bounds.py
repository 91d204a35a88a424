"""A memory's metadata is bounded (bytes of its JSON): by the plane's max_metadata_bytes (64 KiB
unless told), by METADATA_CEILING on every store, and value by value in the remember tool."""

from __future__ import annotations

import pytest

from tether.core.errors import ConfigurationError, InvalidInputError, ToolArgumentsError
from tether.llm import HashingEmbedder
from tether.memory import InProcessEpisodic, MemoryScope
from tether.memory.plane import MemoryPlane
from tether.memory.validate import MAX_METADATA_BYTES, METADATA_CEILING
from tether.tools import ToolExecutor

from .conftest import MemoryFactory

ACME = MemoryScope("acme")
HUGE = {"blob": "x" * 20_000_000}


def plane(**kwargs: int) -> MemoryPlane:
    return MemoryPlane(InProcessEpisodic(embedder=HashingEmbedder()), **kwargs)


async def test_a_20_mb_metadata_is_refused_saying_its_size_the_limit_and_how_to_raise_it() -> None:
    mem = plane()
    for journal in (True, False):
        with pytest.raises(InvalidInputError) as caught:
            await mem.remember("a note", scope=ACME, metadata=HUGE, journal=journal)
        msg = str(caught.value)
        assert "20,000,011 bytes" in msg and f"{MAX_METADATA_BYTES:,}" in msg
        assert "MemoryPlane(max_metadata_bytes=" in msg
    with pytest.raises(InvalidInputError):
        await mem.add_once("a note", scope=ACME, key="k1", metadata=HUGE)
    assert await mem.episodic.count(ACME) == 0


async def test_the_plane_limit_is_counted_in_utf8_bytes_and_can_be_raised_or_lowered() -> None:
    just = {"k": "é" * (MAX_METADATA_BYTES // 2 + 10)}  # fits in characters, not in bytes
    with pytest.raises(InvalidInputError):
        await plane().remember("a note", scope=ACME, metadata=just, journal=False)
    roomy = plane(max_metadata_bytes=4 * MAX_METADATA_BYTES)
    kept = await roomy.remember("a note", scope=ACME, metadata=just, journal=False)
    assert kept.metadata == just
    tight = plane(max_metadata_bytes=100)
    with pytest.raises(InvalidInputError, match="more than the limit of 100"):
        await tight.remember("a note", scope=ACME, metadata={"k": "v" * 100}, journal=False)


def test_a_bad_limit_is_a_configuration_error() -> None:
    for bad in (0, -1, METADATA_CEILING + 1, True, 1.5, "64k"):
        with pytest.raises(ConfigurationError, match="max_metadata_bytes"):
            plane(max_metadata_bytes=bad)  # type: ignore[arg-type]


async def test_every_store_refuses_metadata_over_the_ceiling(
    memory_factory: MemoryFactory,
) -> None:
    m = await memory_factory()
    with pytest.raises(InvalidInputError, match="more than the limit of"):
        await m.add("a note", scope=ACME, metadata=HUGE)
    assert await m.count(ACME) == 0


async def test_the_remember_tool_bounds_each_metadata_value_and_the_whole() -> None:
    tools = ToolExecutor(plane().tools(), tenant="acme", max_args_bytes=None)
    for metadata in (
        {"k": "x" * 2_001},
        {"k" * 101: "v"},
        {f"k{i}": i for i in range(33)},
        {"k": "x" * 20_000_000},
    ):
        r = await tools.call("remember", {"text": "a note", "metadata": metadata})
        assert isinstance(r.error, ToolArgumentsError), list(metadata)[:1]
    small = ToolExecutor(plane(max_metadata_bytes=1_000).tools(), tenant="acme")
    big = {f"k{i}": "x" * 400 for i in range(3)}
    r = await small.call("remember", {"text": "a note", "metadata": big})
    assert "InvalidInputError" in str(r.error) and "limit of 1,000" in str(r.error)
    ok = await small.call("remember", {"text": "a note", "metadata": {"source": "chat"}})
    assert ok.ok
