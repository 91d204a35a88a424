"""A 1,000-call run against a flaky tool: retries by error class, the circuit breaker trips and
recovers, the shared rate limit holds, and every call is journaled in the run."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import (
    CircuitOpenError,
    PolicyViolationError,
    ToolArgumentsError,
    ToolRateLimitedError,
    ToolTransientError,
)
from tether.store.memory import MemoryStore
from tether.tools import (
    BreakerPolicy,
    BreakerState,
    RateLimit,
    ToolExecutor,
    ToolResult,
    ToolRetry,
    tool,
)

CALLS = 1000
RATE, BURST = 1000.0, 50


class FlakyService:
    """Call ``i`` fails its first attempt with a class chosen by ``i % 5``; then succeeds."""

    def __init__(self) -> None:
        self.invocations: Counter[str] = Counter()
        self.attempts: Counter[int] = Counter()
        self.stamps: list[float] = []

    async def __call__(self, i: int) -> int:
        self.stamps.append(time.monotonic())
        self.attempts[i] += 1
        first = self.attempts[i] == 1
        kind = i % 5
        if first and kind == 0:
            self.invocations["transient"] += 1
            raise ToolTransientError("HTTP 503", status=503)
        if first and kind == 1:
            self.invocations["rate_limited"] += 1
            raise ToolRateLimitedError("HTTP 429", retry_after=0.001)
        if first and kind == 2 and i % 50 == 2:
            self.invocations["timeout"] += 1
            await asyncio.sleep(1.0)  # past the contract's timeout
        if kind == 3 and i % 10 == 3:
            self.invocations["policy"] += 1
            raise PolicyViolationError("amount over the approval limit")
        self.invocations["ok"] += 1
        return i * 2


class State(TypedDict, total=False):
    results: list[dict[str, Any]]


async def test_thousand_calls_retries_by_class_rate_limit_and_journal() -> None:
    service = FlakyService()

    @tool(
        retry=ToolRetry(max_attempts=3, initial_interval=0.001, max_interval=0.005),
        rate_limit=RateLimit(RATE, burst=BURST),
        timeout=0.05,
    )
    async def flaky(i: int) -> int:
        """A flaky remote call."""
        return await service(i)

    store = MemoryStore()
    executor = ToolExecutor([flaky], store)
    results: list[ToolResult] = []

    async def caller(state: State, ctx: RunContext) -> dict[str, Any]:
        batch = [("flaky", {"i": i} if i % 100 != 99 else {"i": "bad"}) for i in range(CALLS)]
        for start in range(0, CALLS, 100):
            results.extend(await executor.call_many(batch[start : start + 100], ctx=ctx))
        return {"results": [{"ok": r.ok, "attempts": r.attempts} for r in results]}

    g = Graph(State, name="thousand")
    g.add_node("caller", caller, phase="tool").add_edge(START, "caller").add_edge("caller", END)
    t0 = time.monotonic()
    async with Runtime(store, recover=False) as rt:
        res = await rt.run(g.compile(), {})
        elapsed = time.monotonic() - t0
        assert res.status is RunStatus.COMPLETED
        journal = await store.list_effects(res.run_id)

    assert len(results) == CALLS
    bad = [i for i in range(CALLS) if i % 100 == 99]
    valid = [i for i in range(CALLS) if i % 100 != 99]
    for i in bad:  # validation errors go back to the planner: never invoked, never retried
        assert isinstance(results[i].error, ToolArgumentsError) and results[i].attempts == 0
    assert all(service.attempts[i] == 0 for i in bad)

    policy = [i for i in valid if i % 10 == 3]
    for i in policy:  # policy violations are never retried
        assert isinstance(results[i].error, PolicyViolationError) and results[i].attempts == 1
    retried = [i for i in valid if i % 5 in (0, 1) or i % 50 == 2]
    for i in retried:  # transient, 429 and timeouts: retried once, then fine
        assert results[i].ok and results[i].value == i * 2 and results[i].attempts == 2, i
    plain = [i for i in valid if i not in policy and i not in retried]
    assert all(results[i].ok and results[i].attempts == 1 for i in plain)

    assert service.invocations == Counter(
        transient=len([i for i in valid if i % 5 == 0]),
        rate_limited=len([i for i in valid if i % 5 == 1]),
        timeout=len([i for i in valid if i % 50 == 2]),
        policy=len(policy),
        ok=len(valid) - len(policy),
    )
    # every valid call has one journal entry in the run; failed ones are recorded as failed
    statuses = Counter(e.status for e in journal)
    assert statuses == Counter(done=len(valid) - len(policy), failed=len(policy))

    # the rate limit held: no one-second window saw more than rate + burst invocations
    stamps = sorted(service.stamps)
    worst = max(
        sum(1 for s in stamps[k : k + int(RATE + BURST) + 5] if s < t + 1.0)
        for k, t in enumerate(stamps)
    )
    # stamps are taken at invocation, a hair after the token grant: allow 1% for that jitter
    assert worst <= (RATE + BURST) * 1.01, worst
    assert elapsed >= (len(stamps) - BURST) / RATE * 0.95


async def test_breaker_trips_fails_fast_and_recovers() -> None:
    healthy = {"up": False}
    invoked = Counter[str]()

    @tool(
        breaker=BreakerPolicy(failure_threshold=5, reset_timeout=0.2),
        retry=ToolRetry(max_attempts=1),
    )
    async def backend(n: int) -> int:
        """A backend that is down, then recovers."""
        invoked["calls"] += 1
        if not healthy["up"]:
            raise ToolTransientError("HTTP 502", status=502)
        return n

    ex = ToolExecutor([backend])
    first = [await ex.call("backend", {"n": n}) for n in range(20)]
    assert [type(r.error).__name__ for r in first[:5]] == ["ToolTransientError"] * 5
    assert all(isinstance(r.error, CircuitOpenError) for r in first[5:])
    assert invoked["calls"] == 5, "an open circuit fails fast without calling the backend"
    br = ex.breaker(backend)
    assert br is not None and br.state is BreakerState.OPEN

    await asyncio.sleep(0.25)
    healthy["up"] = True
    assert (await ex.call("backend", {"n": 7})).value == 7  # the half-open trial
    assert br.state is BreakerState.CLOSED
    assert br.transitions == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    after = [await ex.call("backend", {"n": n}) for n in range(10)]
    assert all(r.ok for r in after)


async def test_failed_half_open_trial_reopens_the_circuit() -> None:
    @tool(
        breaker=BreakerPolicy(failure_threshold=1, reset_timeout=0.05),
        retry=ToolRetry(max_attempts=1),
    )
    async def down() -> None:
        """Always down."""
        raise ToolTransientError("HTTP 500", status=500)

    ex = ToolExecutor([down])
    await ex.call("down")
    await asyncio.sleep(0.06)
    trial = await ex.call("down")
    assert isinstance(trial.error, ToolTransientError)
    assert isinstance((await ex.call("down")).error, CircuitOpenError)


async def test_rate_limit_wait_beyond_max_wait_fails_as_rate_limited() -> None:
    @tool(rate_limit=RateLimit(1.0, burst=1, max_wait=0.05))
    async def scarce() -> str:
        """One call per second."""
        return "ok"

    ex = ToolExecutor([scarce])
    assert (await ex.call("scarce")).ok
    res = await ex.call("scarce")
    assert isinstance(res.error, ToolRateLimitedError) and res.attempts == 0
    assert res.error.retry_after is not None and res.error.retry_after > 0.5


async def test_http_status_errors_are_classified() -> None:
    import httpx

    seen = Counter[int]()

    @tool(retry=ToolRetry(max_attempts=2, initial_interval=0.001))
    async def http(status: int) -> str:
        """Calls an HTTP API."""
        seen[status] += 1
        request = httpx.Request("GET", "http://api.test/x")
        response = httpx.Response(status, request=request, headers={"Retry-After": "0.01"})
        if seen[status] == 1:
            raise httpx.HTTPStatusError("boom", request=request, response=response)
        return "ok"

    ex = ToolExecutor([http])
    assert (await ex.call("http", {"status": 503})).attempts == 2  # 5xx: transient, retried
    assert (await ex.call("http", {"status": 429})).attempts == 2  # 429: waits Retry-After
    res = await ex.call("http", {"status": 404})  # 4xx: not retried
    assert not res.ok and res.attempts == 1 and "HTTPStatusError" in str(res.error)


async def test_call_many_cancels_calls_past_the_batch_timeout() -> None:
    @tool(timeout=None)
    async def slow(s: float) -> float:
        """Sleeps."""
        await asyncio.sleep(s)
        return s

    ex = ToolExecutor([slow])
    out = await ex.call_many([("slow", {"s": 0.01}), ("slow", {"s": 5})], timeout=0.2)
    assert out[0].ok and out[0].value == 0.01
    assert not out[1].ok and "cancelled" in str(out[1].error)
