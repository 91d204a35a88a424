"""The evaluation log's rows against memory, SQLite and PostgreSQL (``store_factory``)."""

from __future__ import annotations

from tether.testing.store_conformance_evaluation import EvaluationLogConformance


class TestEvaluationLogConformance(EvaluationLogConformance):
    """``store_factory`` (tests/store/conftest.py) parametrizes every test over the backends."""
