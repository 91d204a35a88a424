"""core.breaker.BreakerPolicy: settings that would leave a breaker stuck are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tether.core.breaker import BreakerPolicy
from tether.core.errors import ConfigurationError


@pytest.mark.parametrize(
    "settings",
    [
        {"reset_timeout": float("nan")},  # before: taken, and the breaker never closed again
        {"reset_timeout": float("inf")},
        {"reset_timeout": -1},
        {"failure_threshold": 0},
        {"failure_threshold": 2.5},
        {"half_open_calls": 0},
        {"half_open_calls": True},
    ],
)
def test_a_breaker_policy_that_would_misbehave_is_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="BreakerPolicy needs"):
        BreakerPolicy(**settings)


def test_sound_policies_are_taken() -> None:
    assert BreakerPolicy(failure_threshold=1, reset_timeout=0, half_open_calls=3).reset_timeout == 0
    assert BreakerPolicy().failure_threshold == 5
