"""Sagas: multi-step effects that undo their completed steps when a later step fails.

    async with Saga(executor, ctx=ctx) as saga:
        flight = await saga.step("book_flight", {"to": "OSL"})
        hotel = await saga.step("book_hotel", {"city": "Oslo"})
        await saga.step("charge", {"cents": 120_00})

If ``charge`` fails, ``book_hotel``'s then ``book_flight``'s compensations run, in that order,
and ``SagaFailedError`` says which step failed and what was undone. Inside a run every step and
every compensation is journaled, so a crash and replay neither repeats a step nor undoes twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tether.core.errors import ConfigurationError, SagaFailedError, ToolError
from tether.tools.contract import ToolContract
from tether.tools.executor import ToolExecutor


@dataclass(slots=True)
class _Done:
    tool: str
    args: dict[str, Any]
    result: Any
    key: str | None


def compensation_args(comp: ToolContract, args: Mapping[str, Any], result: Any) -> dict[str, Any]:
    """The undo receives the step's own arguments, plus ``result`` if it declares one."""
    accepted = set(comp.args_model.model_fields)
    out = {k: v for k, v in args.items() if k in accepted}
    if "result" in accepted:
        out["result"] = result
    return out


class Saga:
    def __init__(self, executor: ToolExecutor, *, ctx: Any = None, name: str = "saga") -> None:
        self.executor = executor
        self.ctx = ctx
        self.name = name
        self.completed: list[_Done] = []
        self.compensated: list[str] = []

    async def step(self, tool: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run one step; raise (a ToolError) if it fails."""
        contract = self.executor.registry.get(tool)
        res = await self.executor.call(tool, args, ctx=self.ctx)
        value = res.unwrap()
        self.completed.append(_Done(tool, contract.validate(args), value, res.key))
        return value

    async def compensate(self) -> list[str]:
        """Undo completed steps, last first. Steps without a compensation are skipped (listed
        in ``skipped``); a failing compensation is retried per its contract, then raised."""
        self.skipped: list[str] = []
        while self.completed:
            done = self.completed.pop()
            contract = self.executor.registry.get(done.tool)
            comp = contract.compensate
            if comp is None:
                self.skipped.append(done.tool)
                continue
            if comp.name not in self.executor.registry:
                self.executor.registry.add(comp)
            key = f"{done.key}:compensate" if done.key else None
            res = await self.executor.call(
                comp.name,
                compensation_args(comp, done.args, done.result),
                ctx=self.ctx,
                key=key,
            )
            res.unwrap()
            self.compensated.append(done.tool)
        return self.compensated

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, Exception):
            return  # success, or a control signal (interrupt, escalation): nothing to undo
        failed = exc.tool if isinstance(exc, ToolError) and exc.tool else "(saga body)"
        if isinstance(exc, ConfigurationError):
            return
        done = await self.compensate()
        raise SagaFailedError(
            f"saga {self.name!r} failed at {failed!r}: {exc}; compensated {done or 'nothing'}",
            failed_step=failed,
            compensated=done,
            cause=exc,
        ) from exc
