"""core.backoff: the one wait rule behind the graph's RetryPolicy, ToolRetry and ModelRetry
(delay sequence, jitter modes with a seeded random, Retry-After honoured and capped, parameter
validation), and the same give-up note from every plane."""

from __future__ import annotations

import math
import random
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RetryPolicy, RunStatus, Runtime
from tether.core.backoff import Backoff
from tether.core.errors import (
    ConfigurationError,
    ModelRateLimitedError,
    ToolRateLimitedError,
    ToolTransientError,
)
from tether.llm import ScriptedModel
from tether.llm.wrappers import ModelRetry, RetryingModel
from tether.store.memory import MemoryStore
from tether.tools import ToolExecutor, ToolRetry, tool

SETTINGS: dict[str, Any] = {
    "max_attempts": 6,
    "initial_interval": 0.3,
    "backoff_factor": 3.0,
    "max_interval": 4.0,
}


def test_delay_sequence_grows_geometrically_and_is_capped() -> None:
    b = Backoff(max_attempts=9, initial_interval=0.5, backoff_factor=2.0, max_interval=5.0)
    fixed = Backoff(
        max_attempts=9, initial_interval=0.5, backoff_factor=2.0, max_interval=5.0, jitter=False
    )
    assert [fixed.delay(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    assert fixed.delay(9) is None  # the 9th attempt was the last
    assert [b.base(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 5.0]


def test_full_jitter_is_the_default_and_uses_the_injected_random() -> None:
    b = Backoff(max_attempts=5, initial_interval=1.0, backoff_factor=2.0, max_interval=10.0)
    assert b.jitter is True
    rng = random.Random(42)
    got = [b.delay(n, rand=rng.random) for n in (1, 2, 3, 4)]
    ref = random.Random(42)
    assert got == [base * ref.random() for base in (1.0, 2.0, 4.0, 8.0)]
    assert b.delay(3, rand=lambda: 0.0) == 0.0 and b.delay(3, rand=lambda: 1.0) == 4.0
    assert Backoff(jitter="full").delay(1, rand=lambda: 0.5) == Backoff().delay(1, rand=lambda: 0.5)


def test_equal_jitter_keeps_half_the_base() -> None:
    b = Backoff(initial_interval=2.0, jitter="equal")
    assert b.delay(1, rand=lambda: 0.0) == 1.0 and b.delay(1, rand=lambda: 1.0) == 2.0
    rng = random.Random(3)
    assert all(2.0 <= b.delay(2, rand=rng.random) <= 4.0 for _ in range(500))


def test_huge_attempt_numbers_stay_at_the_cap_without_overflow() -> None:
    b = Backoff(max_attempts=100_000, initial_interval=0.1, max_interval=7.0, jitter=False)
    assert b.delay(5000) == 7.0  # 2.0 ** 4999 alone would raise OverflowError
    assert Backoff(initial_interval=0.0, jitter=False).delay(2) == 0.0
    assert Backoff(backoff_factor=1.0, initial_interval=0.2, jitter=False).delay(2) == 0.2


def test_retry_after_is_waited_exactly_and_capped() -> None:
    b = Backoff(max_attempts=3, max_retry_after=30.0)
    assert b.delay(1, retry_after=12.5) == 12.5  # not the backoff
    assert b.delay(1, retry_after=30.0) == 30.0  # at the cap: still waited
    assert b.delay(1, retry_after=30.1) is None  # beyond it: give up at once
    assert b.delay(1, retry_after=-3.0) == 0.0
    assert b.delay(1, retry_after=math.nan, rand=lambda: 1.0) == 0.1  # unreadable: backoff
    assert b.delay(3, retry_after=1.0) is None  # no attempts left, whatever the server says


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "Backoff.max_attempts must be >= 1"),
        ({"max_attempts": 2.5}, "max_attempts must be an int"),
        ({"max_attempts": True}, "max_attempts must be an int"),
        ({"initial_interval": -1.0}, "initial_interval: intervals must be >= 0"),
        ({"max_interval": math.nan}, "max_interval: intervals must be >= 0"),
        ({"max_interval": math.inf}, "max_interval must be a finite"),
        ({"max_retry_after": -0.5}, "max_retry_after: intervals must be >= 0"),
        ({"backoff_factor": 0.5}, "backoff_factor must be a finite number >= 1"),
        ({"backoff_factor": math.inf}, "backoff_factor must be a finite number >= 1"),
        ({"jitter": "decorrelated"}, "jitter must be True"),
        ({"jitter": 1}, "jitter must be True"),
    ],
)
def test_bad_parameters_raise_a_configuration_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Backoff(**kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (RetryPolicy, {"backoff_factor": 0.5}),
        (RetryPolicy, {"jitter": "decorrelated"}),
        (ToolRetry, {"backoff_factor": 0.5}),
        (ToolRetry, {"max_interval": math.nan}),
        (ModelRetry, {"max_attempts": 0}),
    ],
)
def test_every_plane_validates_with_the_shared_rules(cls: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{cls.__name__}\."):
        cls(**kwargs)


def test_the_three_planes_wait_exactly_the_same_for_the_same_settings() -> None:
    for jitter in (True, "full", "equal", False):
        node = RetryPolicy(**SETTINGS, jitter=jitter)
        tool_ = ToolRetry(**SETTINGS, jitter=jitter)
        model = ModelRetry(**SETTINGS, jitter=jitter)
        core = Backoff(**SETTINGS, jitter=jitter)
        r1, r2, r3, r4 = (random.Random(11) for _ in range(4))
        waits = {
            "graph": [node.delay(n, r1.random) for n in range(1, 6)],
            "tool": [
                tool_.retry_delay(ToolTransientError("503"), n, r2.random) for n in range(1, 6)
            ],
            "model": [
                model.retry_delay(ModelRateLimitedError("429"), n, r3.random) for n in range(1, 6)
            ],
            "core": [core.delay(n, rand=r4.random) for n in range(1, 6)],
        }
        assert waits["graph"] == waits["tool"] == waits["model"] == waits["core"], (jitter, waits)
        assert len(set(waits["core"])) > 1


def test_tool_and_model_honour_retry_after_the_same_way() -> None:
    tool_ = ToolRetry(max_retry_after=10.0)
    model = ModelRetry(max_retry_after=10.0)
    for ra, want in ((4.0, 4.0), (10.0, 10.0), (10.5, None)):
        assert tool_.retry_delay(ToolRateLimitedError("429", retry_after=ra), 1) == want
        assert model.retry_delay(ModelRateLimitedError("429", retry_after=ra), 1) == want


# -- the same give-up note in every plane ---------------------------------------------------


async def test_a_tool_that_keeps_failing_says_it_gave_up() -> None:
    calls: list[int] = []

    @tool(idempotent=True, retry=ToolRetry(max_attempts=3, initial_interval=0.0, jitter=False))
    async def flaky(i: int) -> int:
        """Always 503."""
        calls.append(i)
        raise ToolTransientError("HTTP 503", status=503)

    @tool(idempotent=True, retry=ToolRetry(max_retry_after=5.0))
    async def slow_down(i: int) -> int:
        """Always 429 with a long Retry-After."""
        raise ToolRateLimitedError("HTTP 429", retry_after=120.0)

    executor = ToolExecutor([flaky, slow_down], MemoryStore())
    res = await executor.call("flaky", {"i": 1})
    assert not res.ok and res.attempts == 3 and calls == [1, 1, 1]
    assert res.error is not None
    assert res.error.__notes__ == [
        "tool 'flaky': gave up after 3 attempts (ToolRetry.max_attempts=3)"
    ]
    res = await executor.call("slow_down", {"i": 1})
    assert res.error is not None and res.attempts == 1
    assert res.error.__notes__ == [
        "tool 'slow_down': not retried: Retry-After 120s is longer than "
        "ToolRetry.max_retry_after=5s"
    ]


async def test_a_model_that_keeps_failing_says_it_gave_up_in_the_same_words() -> None:
    inner = ScriptedModel([ModelRateLimitedError("429")] * 3, name="m")
    policy = ModelRetry(max_attempts=3, initial_interval=0.0, jitter=False)
    with pytest.raises(ModelRateLimitedError) as caught:
        await RetryingModel(inner, policy).chat("hi")
    assert caught.value.__notes__ == [
        "model 'scripted:m': gave up after 3 attempts (ModelRetry.max_attempts=3)"
    ]


class S(TypedDict, total=False):
    n: int


async def test_a_node_that_keeps_failing_says_it_gave_up_in_the_same_words() -> None:
    def boom(s: Any) -> dict[str, Any]:
        raise ConnectionError("down")

    g = Graph(S, name="backoff_note")
    g.add_node("boom", boom, retry=RetryPolicy(max_attempts=2, initial_interval=0.0, jitter=False))
    g.add_edge(START, "boom").add_edge("boom", END)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(g.compile(), {"n": 0})
    assert res.status is RunStatus.FAILED and res.cause is not None
    assert res.cause.__notes__ == [
        "node 'boom': gave up after 2 attempts (RetryPolicy.max_attempts=2)"
    ]
