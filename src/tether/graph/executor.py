"""Runs one task (a node invocation) with its retry policy; returns an outcome, never raises
for node errors (the run loop decides what a failure means for the run)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tether.core.errors import EscalationSignal, Interrupt, UserError
from tether.core.json_copy import error_text
from tether.graph.context import RunContext, _current
from tether.graph.interrupt_timeout import TimeoutRoute
from tether.graph.sleep import Sleeping
from tether.graph.state import check_kept
from tether.graph.types import Command, Detour, NodeSpec, Send


@dataclass(slots=True)
class Outcome:
    task: dict[str, Any]
    kind: str  # "done" | "interrupted" | "escalated" | "error" | "sleeping"
    writes: dict[str, Any] | None = None
    goto: tuple[Any, ...] = ()
    interrupt: Interrupt | None = None
    signal: EscalationSignal | None = None
    error: BaseException | None = None
    attempts: int = 1
    until: float | None = None
    """When ``kind == "sleeping"``: the deadline the task's durable sleep waits for."""


def _normalize(node: str, ret: Any) -> tuple[dict[str, Any] | None, tuple[Any, ...]]:
    if ret is None:
        return None, ()
    if isinstance(ret, Command):
        goto = ret.goto
        if isinstance(goto, str | Send):
            gt: tuple[Any, ...] = (goto,)
        else:
            gt = tuple(goto)
        return ret.update, gt
    return ret, ()


class StrayCancellation(RuntimeError):
    """A node raised ``CancelledError`` while its task was not being cancelled: something it
    awaited (a future, another task) was cancelled by someone else. That is the node's failure
    (retried by its policy, then the run's), not a cancellation of the run, which would leave
    it EXECUTING with nobody running it."""

    def __init__(self, node: str, cancelled: asyncio.CancelledError) -> None:
        super().__init__(
            f"node {node!r} raised CancelledError without being cancelled: something it "
            f"awaited was cancelled by someone else ({error_text(cancelled) or 'no message'})"
        )
        self.__cause__ = cancelled


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def _call(spec: NodeSpec, arg: Any, ctx: RunContext) -> Any:
    if spec.subgraph is not None:
        return await ctx._host.run_subgraph(spec.subgraph, arg, ctx)
    args = (arg, ctx) if spec.wants_ctx else (arg,)
    if spec.is_async:
        return await spec.fn(*args)
    if spec.thread:
        return await asyncio.to_thread(spec.fn, *args)
    return spec.fn(*args)


async def run_task(
    spec: NodeSpec, task: dict[str, Any], state: Mapping[str, Any], ctx: RunContext, schema: Any
) -> Outcome:
    arg = task["arg"] if "arg" in task else MappingProxyType(state)
    # a plain function, or a coroutine function awaited at once: called here, no frame between
    direct = spec.subgraph is None and (spec.is_async or not spec.thread)
    attempt = 1
    token = _current.set(ctx)
    try:
        while True:
            ctx.attempt = attempt
            ctx._interrupts = 0
            ctx._calls.clear()
            try:
                if direct:
                    ret = spec.fn(arg, ctx) if spec.wants_ctx else spec.fn(arg)
                    if spec.is_async:
                        ret = await ret
                else:
                    ret = await _call(spec, arg, ctx)
                if type(ret) is dict:  # the usual answer: a partial update, no Command
                    writes: dict[str, Any] | None = ret
                    goto: tuple[Any, ...] = ()
                else:
                    writes, goto = _normalize(spec.name, ret)
                if writes is not None:
                    schema.check_update(writes, spec.name)
                for g in goto:
                    if isinstance(g, Send):  # kept in the checkpoint as the task's argument
                        check_kept(g.arg, f"Send({g.node!r}) argument", f"node {spec.name!r}")
                # by position (task, kind, writes, goto, interrupt, signal, error, attempts):
                # once a step, and keywords cost a dataclass call about twice as much
                return Outcome(task, "done", writes or None, goto, None, None, None, attempt)
            except Interrupt as intr:
                return Outcome(task, "interrupted", interrupt=intr, attempts=attempt)
            except EscalationSignal as sig:
                return Outcome(task, "escalated", signal=sig, attempts=attempt)
            except Sleeping as s:
                return Outcome(task, "sleeping", attempts=attempt, until=s.until)
            except TimeoutRoute as route:  # an interrupt timed out: go to its on_timeout node
                return Outcome(task, "done", None, (Detour(route.node),), attempts=attempt)
            except asyncio.CancelledError as cancelled:
                if _being_cancelled():  # the run is cancelled, handed back, shut down
                    raise
                exc: Exception = StrayCancellation(spec.name, cancelled)
            except Exception as caught:
                exc = caught
            if not isinstance(exc, UserError) and spec.retry.should_retry(exc, attempt):
                ctx._emit(
                    "node_retry",
                    {"attempt": attempt, "error": f"{type(exc).__name__}: {error_text(exc)}"},
                    spec.name,
                )
                await asyncio.sleep(spec.retry.delay(attempt))
                attempt += 1
                continue
            spec.retry.schedule.note_give_up(exc, attempt, who=f"node {spec.name!r}")
            return Outcome(task, "error", error=exc, attempts=attempt)
    finally:
        _current.reset(token)
