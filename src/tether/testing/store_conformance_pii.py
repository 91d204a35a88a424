"""Conformance: the PII vault's rows (``tether.store.pii_vault``), on every backend."""

from __future__ import annotations

import asyncio

from tether.store.pii_vault import PiiRow, PiiSecret, PiiVaultStore
from tether.store.protocol import RunStore
from tether.testing.store_helpers import StoreFactory, StoreTestBase, create


def vaults(store: RunStore) -> PiiVaultStore:
    assert isinstance(store, PiiVaultStore), f"{type(store).__name__} has no PII vault"
    return store


def secret(entity: str, digest: str) -> PiiSecret:
    return PiiSecret(entity, digest, b"\x00sealed-" + digest.encode() + b"\xff")


class PiiVaultConformance(StoreTestBase):
    async def test_the_first_key_check_stays(self, store: RunStore) -> None:
        v = vaults(store)
        assert await v.pii_key_check("r1", "aaa") == "aaa"
        assert await v.pii_key_check("r1", "bbb") == "aaa"
        assert await v.pii_key_check("r2", "bbb") == "bbb"

    async def test_numbers_per_type_and_one_per_digest(self, store: RunStore) -> None:
        v = vaults(store)
        await v.pii_key_check("r1", "k")
        got = await v.assign_pii(
            "r1", [secret("EMAIL", "d1"), secret("PERSON", "d2"), secret("EMAIL", "d3")]
        )
        assert got == [1, 1, 2]
        assert await v.assign_pii("r1", [secret("EMAIL", "d3"), secret("EMAIL", "d4")]) == [2, 3]
        rows = await v.get_pii("r1", [("EMAIL", 2), ("PERSON", 1), ("EMAIL", 9), ("EMAIL", 2)])
        assert rows == [
            PiiRow("EMAIL", 2, "d3", b"\x00sealed-d3\xff"),
            PiiRow("PERSON", 1, "d2", b"\x00sealed-d2\xff"),
        ]
        assert await v.get_pii("r2", [("EMAIL", 1)]) == []

    async def test_assigning_needs_a_key_check(self, store: RunStore) -> None:
        from tether.core.errors import InvalidInputError

        try:
            await vaults(store).assign_pii("r9", [secret("EMAIL", "d1")])
        except InvalidInputError as exc:
            assert "pii_key_check" in str(exc)
        else:
            raise AssertionError("assign_pii without a key check was accepted")

    async def test_concurrent_writers_agree(self, store_factory: StoreFactory) -> None:
        stores = [await store_factory() for _ in range(3)]
        await vaults(stores[0]).pii_key_check("r1", "k")
        batches = [[secret("EMAIL", f"d{(i + j) % 6}") for j in range(4)] for i in range(6)]
        results = await asyncio.gather(
            *(vaults(stores[i % 3]).assign_pii("r1", b) for i, b in enumerate(batches))
        )
        seen: dict[str, int] = {}
        for batch, numbers in zip(batches, results, strict=True):
            for s, n in zip(batch, numbers, strict=True):
                assert seen.setdefault(s.digest, n) == n  # one number per value
        assert sorted(seen.values()) == [1, 2, 3, 4, 5, 6]  # one value per number

    async def test_deleting_the_run_deletes_its_vault(self, store: RunStore) -> None:
        v = vaults(store)
        await create(store, "r1")
        await v.pii_key_check("r1", "k")
        await v.assign_pii("r1", [secret("EMAIL", "d1")])
        await store.delete_run("r1")
        assert await v.get_pii("r1", [("EMAIL", 1)]) == []
        assert await v.pii_key_check("r1", "other") == "other"
        await v.pii_key_check("r2", "k")
        await v.assign_pii("r2", [secret("EMAIL", "d1")])
        assert await v.delete_pii("r2") == 1
