"""The RunStore conformance suite against memory, SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

from tether.testing.store_conformance import StoreConformance


class TestStoreConformance(StoreConformance):
    """``store_factory`` (tests/store/conftest.py) parametrizes every test over the backends."""
