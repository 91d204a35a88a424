"""The PII vault's rows against memory, SQLite and PostgreSQL (``store_factory``)."""

from __future__ import annotations

from tether.testing.store_conformance_pii import PiiVaultConformance


class TestPiiVaultConformance(PiiVaultConformance):
    """``store_factory`` (tests/store/conftest.py) parametrizes every test over the backends."""
