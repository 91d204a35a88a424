"""Budget and quota ledgers against memory, SQLite and PostgreSQL (``store_factory``)."""

from __future__ import annotations

from tether.testing.store_conformance_budget import BudgetConformance


class TestBudgetConformance(BudgetConformance):
    """``store_factory`` (tests/store/conftest.py) parametrizes every test over the backends."""
