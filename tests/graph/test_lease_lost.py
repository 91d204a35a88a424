"""``heartbeat.lease_lost``: the one line a runtime logs when a run's lease is gone, and the
error its ``wait()`` raises, told apart by what the run looks like when read after the loss."""

from __future__ import annotations

import logging

import pytest

from tether.core.lifecycle import RunStatus
from tether.graph.heartbeat import lease_lost
from tether.store.types import RunRecord


def _run(status: RunStatus, owner: str | None, token: int) -> RunRecord:
    return RunRecord("r1", "wf", status, owner=owner, lease_token=token)


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records]


def test_a_run_held_by_another_worker(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tether.runtime")
    err = lease_lost("A", "r1", 1, _run(RunStatus.EXECUTING, "B", 2))
    assert (err.holder, err.holder_token) == ("B", 2)
    assert "worker B holds it now (token 2)" in str(err)
    assert _logged(caplog) == [
        (
            logging.WARNING,
            "run r1: lease lost to B (token 2; ours was 1); stopped executing it here",
        )
    ]


def test_a_run_taken_over_and_already_completed_is_a_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The taker finished the run before the loser looked (a frozen worker woken late): still
    a lease lost to another owner, not a run "made COMPLETED elsewhere" under our lease."""
    caplog.set_level(logging.INFO, logger="tether.runtime")
    err = lease_lost("A", "r1", 1, _run(RunStatus.COMPLETED, None, 2))
    assert "another worker took it over (token 2) and made it COMPLETED" in str(err)
    assert _logged(caplog) == [
        (
            logging.WARNING,
            "run r1: lease lost to another owner, which made it COMPLETED (token 2; ours was 1); "
            "stopped executing it here",
        )
    ]


def test_a_run_cancelled_elsewhere_is_not_a_takeover(caplog: pytest.LogCaptureFixture) -> None:
    """A cancel bumps the token too, but nobody took the run over: one INFO line."""
    caplog.set_level(logging.INFO, logger="tether.runtime")
    err = lease_lost("A", "r1", 1, _run(RunStatus.CANCELLED, None, 2))
    assert "it was made CANCELLED elsewhere" in str(err)
    assert [lvl for lvl, _ in _logged(caplog)] == [logging.INFO]


def test_a_run_that_cannot_be_read(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tether.runtime")
    err = lease_lost("A", "r1", 1, None)
    assert "could not be read" in str(err)
    assert _logged(caplog)[0][1].startswith("run r1: lease lost to unknown")
