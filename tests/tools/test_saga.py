"""Sagas: step 3 of 4 fails → compensations of 2 and 1 run, in order, once."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import SagaFailedError, ToolTransientError
from tether.store.memory import MemoryStore
from tether.tools import Saga, ToolExecutor, ToolRetry, tool


def _booking_tools(log: list[str], fail_charge: dict[str, bool]) -> list[Any]:
    def release_stock(sku: str, result: str) -> None:
        log.append(f"release_stock({sku}, {result})")

    def cancel_shipping(address: str, result: str) -> None:
        log.append(f"cancel_shipping({result})")

    @tool(scope="write", compensate=release_stock)
    def reserve_stock(sku: str) -> str:
        """Reserve stock."""
        log.append("reserve_stock")
        return f"res-{sku}"

    @tool(scope="write", compensate=cancel_shipping)
    def book_shipping(address: str) -> str:
        """Book a courier."""
        log.append("book_shipping")
        return "ship-1"

    @tool(scope="write", retry=ToolRetry(max_attempts=1))
    def charge(cents: int) -> str:
        """Charge the card."""
        log.append("charge")
        if fail_charge["on"]:
            raise ToolTransientError("card processor down", status=503)
        return "ch-1"

    @tool(scope="write")
    def notify(text: str) -> None:
        """Tell the customer."""
        log.append("notify")

    return [reserve_stock, book_shipping, charge, notify]


async def _order(saga: Saga) -> None:
    await saga.step("reserve_stock", {"sku": "A"})
    await saga.step("book_shipping", {"address": "Main St"})
    await saga.step("charge", {"cents": 500})
    await saga.step("notify", {"text": "on its way"})


async def test_failed_step_compensates_completed_steps_in_reverse_once() -> None:
    log: list[str] = []
    ex = ToolExecutor(_booking_tools(log, {"on": True}))
    with pytest.raises(SagaFailedError) as info:
        async with Saga(ex, name="order") as saga:
            await _order(saga)
    assert log == [
        "reserve_stock",
        "book_shipping",
        "charge",
        "cancel_shipping(ship-1)",
        "release_stock(A, res-A)",
    ]
    err = info.value
    assert err.failed_step == "charge"
    assert err.compensated == ["book_shipping", "reserve_stock"]
    assert isinstance(err.cause, ToolTransientError)


async def test_successful_saga_compensates_nothing() -> None:
    log: list[str] = []
    ex = ToolExecutor(_booking_tools(log, {"on": False}))
    async with Saga(ex) as saga:
        await _order(saga)
    assert log == ["reserve_stock", "book_shipping", "charge", "notify"]
    assert saga.compensated == []


class State(TypedDict, total=False):
    done: bool


async def test_in_a_run_steps_and_compensations_are_journaled_and_never_repeat() -> None:
    log: list[str] = []
    fail = {"on": True}
    store = MemoryStore()
    ex = ToolExecutor(_booking_tools(log, fail), store)

    async def order(state: State, ctx: RunContext) -> dict[str, Any]:
        async with Saga(ex, ctx=ctx, name="order") as saga:
            await _order(saga)
        return {"done": True}

    g = Graph(State, name="saga_run")
    g.add_node("order", order, phase="tool").add_edge(START, "order").add_edge("order", END)
    wf = g.compile()
    async with Runtime(store, recover=False) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.FAILED
        assert res.error is not None and res.error["type"] == "SagaFailedError"
        first = list(log)
        assert first == [
            "reserve_stock",
            "book_shipping",
            "charge",
            "cancel_shipping(ship-1)",
            "release_stock(A, res-A)",
        ]

        # the operator retries the failed run: the node re-runs, but every step and every
        # compensation that already happened is replayed from the journal, not performed again
        res2 = await rt.resume(res.run_id)
        assert res2.status is RunStatus.FAILED  # type: ignore[union-attr]
        assert log == [*first, "charge"], "only the failed step was attempted again"

        effects = {e.key: e.status for e in await store.list_effects(res.run_id)}
        assert sorted(k for k in effects if k.endswith(":compensate")) == [
            f"{res.run_id}:1:order:0:tool:book_shipping:0:compensate",
            f"{res.run_id}:1:order:0:tool:reserve_stock:0:compensate",
        ]


async def test_a_failing_compensation_does_not_keep_the_others_from_running() -> None:
    """The courier's cancellation failing left the stock reserved, and the caller's `except
    SagaFailedError` missed the compensation's bare ToolError."""
    log: list[str] = []

    def release_stock(sku: str) -> None:
        log.append("release_stock")

    def cancel_shipping(address: str) -> None:
        raise RuntimeError("courier API down")

    @tool(scope="write", compensate=release_stock)
    def reserve_stock(sku: str) -> str:
        """Reserve stock."""
        return "res"

    @tool(scope="write", compensate=cancel_shipping)
    def book_shipping(address: str) -> str:
        """Book a courier."""
        return "ship"

    @tool(scope="write")
    def charge(cents: int) -> str:
        """Charge the card."""
        raise ToolTransientError("card processor down", status=503)

    ex = ToolExecutor([reserve_stock, book_shipping, charge])
    with pytest.raises(SagaFailedError, match=r"NOT compensated .*'book_shipping'") as info:
        async with Saga(ex, name="order") as saga:
            await saga.step("reserve_stock", {"sku": "A"})
            await saga.step("book_shipping", {"address": "Main St"})
            await saga.step("charge", {"cents": 500})
    assert log == ["release_stock"]
    err = info.value
    assert (err.failed_step, err.compensated) == ("charge", ["reserve_stock"])
    assert err.not_compensated == ["book_shipping"]
    assert "courier API down" in str(err.compensation_errors[0])
    assert saga.not_compensated[0][0] == "book_shipping" and saga.skipped == []


async def test_skipped_is_there_before_anything_failed() -> None:
    ex = ToolExecutor(_booking_tools([], {"on": False}))
    async with Saga(ex) as saga:
        await saga.step("notify", {"text": "hi"})
    assert (saga.skipped, saga.not_compensated) == ([], [])
