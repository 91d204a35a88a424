"""Conformance: the control plane (``tether.store.control``): token buckets and flags.

Time stands still unless a test moves the ``FakeClock``, so every wait is exact.
"""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any

import pytest

from tether.store.control import ControlStore
from tether.store.protocol import RunStore
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import StoreFactory, StoreTestBase

if TYPE_CHECKING:  # every backend satisfies ControlStore statically too (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _BACKENDS: tuple[type[ControlStore], ...] = (MemoryStore, SqliteStore, PostgresStore)


def control(store: RunStore) -> ControlStore:
    assert isinstance(store, ControlStore), f"{type(store).__name__} lacks the control plane"
    return store


class ControlConformance(StoreTestBase):
    # -- token buckets ----------------------------------------------------------------------
    async def test_store_is_a_control_store(self, store: RunStore) -> None:
        control(store)

    async def test_new_bucket_starts_full_then_waits_for_the_deficit(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ctl = control(store)
        assert [await ctl.take_tokens("b", 2, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert await ctl.take_tokens("b", 2, 3) == 0.5  # 1 missing at 2/s
        assert await ctl.take_tokens("b", 2, 3, n=2) == 1.0
        clock.advance(0.25)
        assert await ctl.take_tokens("b", 2, 3) == 0.25  # 0.5 there, 0.5 missing
        clock.advance(0.25)
        assert await ctl.take_tokens("b", 2, 3) == 0.0
        assert await ctl.take_tokens("b", 2, 3) == 0.5

    async def test_a_refused_take_takes_nothing(self, store: RunStore) -> None:
        ctl = control(store)
        assert await ctl.take_tokens("b", 1, 5, n=4) == 0.0
        assert await ctl.take_tokens("b", 1, 5, n=3) == 2.0
        assert await ctl.take_tokens("b", 1, 5, n=3) == 2.0
        assert await ctl.take_tokens("b", 1, 5, n=1) == 0.0  # the 1 left was never taken
        assert await ctl.take_tokens("b", 1, 5, n=1) == 1.0

    async def test_refill_over_time_is_capped_at_burst(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ctl = control(store)
        assert await ctl.take_tokens("b", 4, 3, n=3) == 0.0
        clock.advance(0.5)  # 2 back
        assert await ctl.take_tokens("b", 4, 3, n=2) == 0.0
        assert await ctl.take_tokens("b", 4, 3) == 0.25
        clock.advance(3600)  # would be 14400 tokens: capped at 3
        assert [await ctl.take_tokens("b", 4, 3) for _ in range(4)] == [0.0, 0.0, 0.0, 0.25]

    @pytest.mark.parametrize(
        ("rate", "burst", "n"),
        [(0, 1, 1), (-1, 1, 1), (1, 0, 1), (1, -1, 1), (1, 1, 0), (1, 1, -1), (1, 2, 3)],
    )
    async def test_bad_arguments_are_refused(
        self, store: RunStore, rate: float, burst: float, n: float
    ) -> None:
        ctl = control(store)
        with pytest.raises(ValueError, match=r"rate > 0, burst > 0 and 0 < n <= burst"):
            await ctl.take_tokens("b", rate, burst, n)
        assert await ctl.take_tokens("b", 1, 2, n=2) == 0.0  # untouched: still full

    async def test_buckets_are_independent(self, store: RunStore) -> None:
        ctl = control(store)
        assert await ctl.take_tokens("a", 1, 1) == 0.0
        assert await ctl.take_tokens("a", 1, 1) == 1.0
        assert await ctl.take_tokens("b", 1, 1) == 0.0
        assert await ctl.take_tokens("a%", 1, 1) == 0.0
        assert await ctl.take_tokens("A", 1, 1) == 0.0
        assert await ctl.take_tokens("b", 1, 1) == 1.0

    async def test_a_bucket_is_shared_between_store_instances(
        self, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        a, b = control(await store_factory()), control(await store_factory())
        assert await a.take_tokens("shared", 1, 2, n=2) == 0.0
        assert await b.take_tokens("shared", 1, 2) == 1.0
        clock.advance(1)
        assert await b.take_tokens("shared", 1, 2) == 0.0
        assert await a.take_tokens("shared", 1, 2) == 1.0

    async def test_concurrent_takers_never_over_grant(self, store_factory: StoreFactory) -> None:
        stores = [control(await store_factory()) for _ in range(2)]
        waits = await asyncio.gather(*(stores[i % 2].take_tokens("hot", 1, 10) for i in range(30)))
        assert sorted(waits) == [0.0] * 10 + [1.0] * 20

    # -- flags ------------------------------------------------------------------------------
    async def test_flags_set_overwrite_and_delete(self, store: RunStore) -> None:
        ctl = control(store)
        assert await ctl.get_flags() == {}
        await ctl.set_flag("kill/tool.search", True)
        await ctl.set_flag("limits/openai", {"rps": 5})
        assert await ctl.get_flags() == {"kill/tool.search": True, "limits/openai": {"rps": 5}}
        await ctl.set_flag("limits/openai", {"rps": 1})
        assert await ctl.get_flags("limits/") == {"limits/openai": {"rps": 1}}
        await ctl.set_flag("kill/tool.search", None)
        await ctl.set_flag("never/set", None)  # deleting a missing flag is no error
        assert await ctl.get_flags() == {"limits/openai": {"rps": 1}}
        falsy: dict[str, Any] = {"f0": 0, "f1": False, "f2": "", "f3": [], "f4": {}}
        for key, value in falsy.items():
            await ctl.set_flag(key, value)
        assert await ctl.get_flags("f") == falsy  # only None deletes

    async def test_prefix_match_is_literal(self, store: RunStore) -> None:
        ctl = control(store)
        keys = [
            "a%b", "a%", "a_b", "axb", "ab", "a", "A_b", "a\\b", "a\\%", "b%",
            "p\U0001f600", "p\uffff\uffff", "p\uffffz", "pz", "é/1", "é", "e/1", "",
        ]  # fmt: skip
        for i, key in enumerate(keys):
            await ctl.set_flag(key, i)

        async def matching(prefix: str) -> set[str]:
            return set(await ctl.get_flags(prefix))

        assert await matching("") == set(keys)
        assert await matching("a%") == {"a%b", "a%"}
        assert await matching("a_") == {"a_b"}
        assert await matching("%") == set()
        assert await matching("_") == set()
        assert await matching("a\\") == {"a\\b", "a\\%"}
        assert await matching("a") == {"a%b", "a%", "a_b", "axb", "ab", "a", "a\\b", "a\\%"}
        assert await matching("A") == {"A_b"}
        assert await matching("a%b") == {"a%b"}
        assert await matching("a%bc") == set()
        # characters above U+FFFF sort after U+FFFF: a ``prefix || U+FFFF`` bound misses them
        assert await matching("p") == {"p\U0001f600", "p\uffff\uffff", "p\uffffz", "pz"}
        assert await matching("p\uffff") == {"p\uffff\uffff", "p\uffffz"}
        assert await matching("é") == {"é/1", "é"}
        assert await matching("e") == {"e/1"}
        assert (await ctl.get_flags("a%"))["a%b"] == 0

    async def test_flags_are_shared_between_store_instances(
        self, store_factory: StoreFactory
    ) -> None:
        a, b = control(await store_factory()), control(await store_factory())
        await a.set_flag("kill/x", True)
        assert await b.get_flags("kill/") == {"kill/x": True}
        await b.set_flag("kill/x", False)
        assert await a.get_flags() == {"kill/x": False}
        await b.set_flag("kill/x", None)
        assert await a.get_flags() == {}

    async def test_flag_values_round_trip_as_json(self, store: RunStore) -> None:
        ctl = control(store)
        value: dict[Any, Any] = {
            "nested": {"list": [1, 2.5, None, True, {"deep": ["x", []]}], "empty": {}},
            "unicode": 'ü € 😀 中文 \u0000 "quoted" \\',
            "😀": -1.25e-300,
            "big": 2**62,
            "tuple": (1, 2),
            3: "non-string key",
        }
        expected = copy.deepcopy({k: v for k, v in value.items() if k != 3})
        expected.update({"tuple": [1, 2], "3": "non-string key"})
        await ctl.set_flag("v", value)
        assert await ctl.get_flags("v") == {"v": expected}
        value["nested"]["list"].append("mutated after set")
        got = await ctl.get_flags()
        assert got == {"v": expected}
        got["v"]["nested"]["empty"]["x"] = 1  # a returned value is the caller's own copy
        assert await ctl.get_flags() == {"v": expected}
        await ctl.set_flag("s", "just a string")
        await ctl.set_flag("n", 3)
        assert await ctl.get_flags() == {"v": expected, "s": "just a string", "n": 3}
