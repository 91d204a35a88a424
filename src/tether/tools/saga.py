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
        self.skipped: list[str] = []
        """Completed steps left as they are: their tool has no compensation."""
        self.not_compensated: list[tuple[str, ToolError]] = []
        """Completed steps whose compensation failed (still in effect), with its error."""

    async def step(self, tool: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run one step; raise (a ToolError) if it fails."""
        contract = self.executor.registry.get(tool)
        res = await self.executor.call(tool, args, ctx=self.ctx)
        value = res.unwrap()
        self.completed.append(_Done(tool, contract.validate(args), value, res.key))
        return value

    async def compensate(self) -> list[str]:
        """Undo completed steps, last first. Steps without a compensation are skipped (listed
        in ``skipped``). A failing compensation is retried per its contract; one that still
        fails is listed in ``not_compensated`` and the others are undone all the same (the
        hotel failing to release must not keep the flight booked); then the first such error
        is raised."""
        await self._undo_all()
        if self.not_compensated:
            raise self.not_compensated[0][1]
        return self.compensated

    async def _undo_all(self) -> None:
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
            if res.ok:
                self.compensated.append(done.tool)
            else:
                err = res.error or ToolError(f"compensation {comp.name!r} failed", tool=comp.name)
                self.not_compensated.append((done.tool, err))

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
        await self._undo_all()
        done = self.compensated
        left = ""
        if self.not_compensated:
            left = "; NOT compensated (still in effect): " + ", ".join(
                f"{step!r} ({type(err).__name__}: {err})" for step, err in self.not_compensated
            )
        raise SagaFailedError(
            f"saga {self.name!r} failed at {failed!r}: {exc}; compensated {done or 'nothing'}"
            + left,
            failed_step=failed,
            compensated=done,
            cause=exc,
            not_compensated=[step for step, _ in self.not_compensated],
            compensation_errors=[err for _, err in self.not_compensated],
        ) from exc
