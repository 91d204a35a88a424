"""A limit no float can hold (an integer past 1.8e308, e.g. a JSON number of 400 digits sent
to ``start(..., budget=...)``) was an ``OverflowError`` traceback out of every check of a
budget, quota or approval setting (``math.isfinite`` cannot convert it): the run API answered
500 instead of refusing the input. Each is now refused with the typed error of its setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.governance import budget_app as app
from tether import RunStatus, Runtime
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.governance import ApprovalRule, Budget, Quota
from tether.governance.approvals import generate_key, sign
from tether.store.approvals import ApprovalRecord
from tether.store.sqlite import SqliteStore

HUGE = 10**400  # an int: float(HUGE) raises OverflowError


def test_settings_past_any_float_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"Budget\['tokens'\] must be a number"):
        Budget(tokens=HUGE)
    with pytest.raises(ConfigurationError, match=r"Quota\['cost'\] must be a number"):
        Quota(cost=HUGE)
    with pytest.raises(ConfigurationError, match=r"Quota\(period=...\) must be > 0 seconds"):
        Quota(period=HUGE, tokens=10)
    with pytest.raises(ConfigurationError, match=r"deadline=\) must be a finite number"):
        ApprovalRule(deadline=HUGE)


def test_a_signature_valid_for_longer_than_any_float_is_refused() -> None:
    rec = ApprovalRecord("apr_1", "run_1", "h", {"tool": "refund"}, "why", {})
    with pytest.raises(InvalidInputError, match="valid_for must be a finite number"):
        sign(generate_key(), rec, valid_for=HUGE)
    with pytest.raises(InvalidInputError, match="expires_at must be a finite time"):
        sign(generate_key(), rec, expires_at=HUGE)


async def test_a_run_budget_or_raise_past_any_float_is_invalid_input(tmp_path: Path) -> None:
    wf = app.build(Budget(model_calls=1))
    async with Runtime(SqliteStore(tmp_path / "b.db")) as rt:
        with pytest.raises(InvalidInputError, match=r"start\(budget=...\)\['tokens'\]"):
            await rt.start(wf, {"turns": 3}, budget={"tokens": HUGE})
        res = await rt.run(wf, {"turns": 3})
        assert res.status is RunStatus.ESCALATED
        with pytest.raises(InvalidInputError, match="raise_budget"):
            await rt.resume(res.run_id, {"raise_budget": {"model_calls": HUGE}})
        assert (await rt.store.get_run(res.run_id)).status is RunStatus.ESCALATED
        again = await rt.resume(res.run_id, {"raise_budget": {"model_calls": 3}})
        assert (await rt.wait(again.run_id)).status is RunStatus.COMPLETED
