"""The effect-safe executor: every tool call validated, governed, and journaled.

Order of checks per call: lookup → argument validation (errors go back to the planner) → kill
switch → circuit breaker → shared rate limit → the call under its timeout, retried per error
class. Inside a run the whole call is one effect-journal entry: intent (with its idempotency key)
before, result after, and a replay returns the recorded result without calling again. An intent
left without a result by a crash is retried with the same key when the tool is idempotent; when
it is not, the run escalates (nobody knows whether the effect happened). A failed call is
journaled with its error and replayed as that error when the node re-runs in the same attempt
(``RunContext.journaled``; ``tether.tools.recorded`` rebuilds it). A rule's key is journaled
as ``tool:{name}:{key}``: two tools deriving one key are two effects.

Sizes are bounded before anything is journaled (``tether.tools.limits``): arguments over
``max_args_bytes`` are a ToolArgumentsError (the call never runs), a result over
``max_result_bytes`` a ToolResultTooLargeError (not retried); each tool's own limit, else the
executor's (1 MiB each unless told; None for none).

The idempotency key a tool (or an MCP server) receives is the contract's ``idempotency_key``
rule applied to the arguments when it has one; else, inside a run, the journal key
``{run}:{step}:{node}:{task index}:tool:{name}:{call index}`` (unique per run and call, the same
when the run replays); else a one-off random key shared only by this call's retries.

A call acts for a **tenant**: inside a run, the run's (``RunContext.tenant``), which the tool
sees as ``ToolContext.tenant`` and which selects the tenant's kill switches and per-tenant rate
limit buckets; outside a run, ``call(tenant=...)`` or the executor's ``tenant``. Inside a run an
executor (or a call) bound to another tenant is refused with ``PolicyViolationError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import (
    PolicyViolationError,
    ToolError,
    ToolRateLimitedError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.core.governor import CallOutcome, GovernedCall, Governor, governor_of
from tether.core.ids import one_off_key
from tether.core.json_copy import error_text
from tether.core.listed import listed
from tether.core.retry_after import retry_after_seconds
from tether.observability.tool_span import start_tool_span
from tether.store.control import ControlStore
from tether.tools import ratelimit
from tether.tools.breaker import CircuitBreaker, Trial, counts_against_health
from tether.tools.contract import ToolContract
from tether.tools.killswitch import KillSwitch
from tether.tools.limits import (
    DEFAULT_MAX_ARGS_BYTES,
    DEFAULT_MAX_RESULT_BYTES,
    check_args,
    check_result,
    checked_limit,
    effective,
)
from tether.tools.observed import observed_call
from tether.tools.policies import Scope, retry_after_of
from tether.tools.recorded import replayed_error
from tether.tools.registry import ToolRegistry
from tether.tools.results import ToolContext, ToolResult


class _LimitExhausted(Exception):
    """Carries a rate-limit failure past the retry loop (its wait already happened)."""

    def __init__(self, error: ToolRateLimitedError) -> None:
        self.error = error


def classify(exc: BaseException, tool: str) -> ToolError:
    """Map any exception a tool raised to the ToolError class that decides its retry."""
    if isinstance(exc, ToolError):
        if exc.tool is None:
            exc.tool = tool
        return exc
    if isinstance(exc, TimeoutError):
        return ToolTimeoutError(f"tool {tool!r} timed out", tool=tool)
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):  # httpx.HTTPStatusError and friends
        if status == 429:
            return ToolRateLimitedError(
                f"tool {tool!r}: HTTP 429", tool=tool, retry_after=_retry_after(response)
            )
        if status >= 500:
            return ToolTransientError(f"tool {tool!r}: HTTP {status}", tool=tool, status=status)
    if type(exc).__name__ in (
        "ConnectError",
        "ReadError",
        "RemoteProtocolError",
        "ConnectionResetError",
        "ConnectionRefusedError",
    ):
        return ToolTransientError(
            f"tool {tool!r}: {type(exc).__name__}: {error_text(exc)}", tool=tool
        )
    err = ToolError(f"tool {tool!r} raised {type(exc).__name__}: {error_text(exc)}", tool=tool)
    err.__cause__ = exc
    return err


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    return retry_after_seconds(headers.get("retry-after") or headers.get("Retry-After"))


def _governed(
    gov: Governor, ctx: Any, call: GovernedCall, attempts: Callable[[], Awaitable[Any]]
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    """``attempts`` reported to ``gov`` when it ends, and the gate that asks ``gov`` first."""

    async def reported() -> Any:
        try:
            value = await attempts()
        except (ToolError, _LimitExhausted) as exc:
            err = exc.error if isinstance(exc, _LimitExhausted) else exc
            await gov.after_call(ctx, call, CallOutcome(False, error=err))
            raise
        await gov.after_call(ctx, call, CallOutcome(True, result=value))
        return value

    async def gate() -> None:
        await gov.before_call(ctx, call)

    return reported, gate


class ToolExecutor:
    def __init__(
        self,
        tools: ToolRegistry | Iterable[ToolContract],
        store: ControlStore | None = None,
        *,
        tenant: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        kill_refresh: float = 0.5,
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
        max_args_bytes: int | None = DEFAULT_MAX_ARGS_BYTES,
    ) -> None:
        """``max_result_bytes`` / ``max_args_bytes``: the size limits (bytes of JSON) of the
        tools that set none of their own; None for no limit (``tether.tools.limits``)."""
        self.registry = (
            tools
            if isinstance(tools, ToolRegistry)
            else ToolRegistry(listed("ToolExecutor(tools)", tools, "ToolExecutor([my_tool])"))
        )
        if store is None:
            from tether.store.memory import MemoryStore

            store = MemoryStore(clock=clock)
        self.store = store
        self.tenant = tenant
        self.clock = clock
        self.kill_switch = KillSwitch(store, refresh=kill_refresh, clock=clock)
        self.max_result_bytes: int | None = checked_limit(
            max_result_bytes, "ToolExecutor max_result_bytes"
        )
        self.max_args_bytes: int | None = checked_limit(
            max_args_bytes, "ToolExecutor max_args_bytes"
        )
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, contract: ToolContract) -> CircuitBreaker | None:
        if contract.breaker is None:
            return None
        br = self._breakers.get(contract.name)
        if br is None:
            br = self._breakers[contract.name] = CircuitBreaker(
                contract.name, contract.breaker, self.clock
            )
        return br

    # -- one call --------------------------------------------------------------------------
    async def call(
        self,
        name: str,
        args: Mapping[str, Any] | None = None,
        *,
        ctx: Any = None,
        key: str | None = None,
        tenant: str | None = None,
    ) -> ToolResult:
        """Call a tool; never raises a ToolError (it is in the result: ``unwrap()`` raises it).
        ``ctx`` (a RunContext) journals the call in its run and gets a ``tool_call`` event;
        when tracing, the call is an ``execute_tool`` span (``tether.tools.observed``)."""
        span = start_tool_span(name, ctx)
        if span is None and ctx is None:
            return await self._call(name, args, ctx, key, tenant)
        return await observed_call(
            self.registry,
            self.clock,
            name,
            args,
            ctx,
            span,
            lambda: self._call(name, args, ctx, key, tenant),
        )

    def _tenant(self, name: str, asked: str | None, ctx: Any) -> str | None:
        """Whom the call acts for: the run's tenant inside a run, else ``asked`` or the
        executor's own."""
        bound = asked if asked is not None else self.tenant
        run_tenant = getattr(ctx, "tenant", None)
        if run_tenant is None:
            return bound
        if bound is not None and bound != run_tenant:
            raise PolicyViolationError(
                f"tool {name!r}: the call is bound to tenant {bound!r} but run "
                f"{getattr(ctx, 'run_id', '?')!r} belongs to tenant {run_tenant!r}; inside a "
                "run tools act for the run's tenant (leave tenant= unset, or use an executor "
                "built for that tenant)",
                tool=name,
            )
        return str(run_tenant)

    async def _call(
        self,
        name: str,
        args: Mapping[str, Any] | None,
        ctx: Any,
        key: str | None,
        tenant: str | None,
    ) -> ToolResult:
        # the journal key is taken first, so a run's sequence of calls keeps the same keys
        journal_key = ctx.call_key(f"tool:{name}") if ctx is not None and key is None else key
        try:
            tenant = self._tenant(name, tenant, ctx)
            contract = self.registry.get(name)
            clean = contract.validate(args)
            check_args(name, clean, effective(contract.max_args_bytes, self.max_args_bytes))
            # the tool's own rule first, then the run's key; outside a run a one-off key, so
            # the executor's own retries of this call still share one key
            derived = contract.derive_key(clean, tenant)
            call_key = derived or journal_key or one_off_key()
        except ToolError as exc:
            return ToolResult(name, False, error=exc, key=journal_key)
        box: dict[str, int] = {"attempts": 0}
        try:  # a switched-off tool is refused before anything is journaled
            await self.kill_switch.check(contract, tenant)
        except ToolError as exc:
            return ToolResult(name, False, error=exc, key=call_key)

        async def plain() -> Any:
            return await self._attempts(contract, clean, call_key, tenant, ctx, box)

        attempts: Callable[[], Awaitable[Any]] = plain
        # a rule's key is the tool's: two tools deriving "1234" are two effects
        journaled_as = f"tool:{name}:{derived}" if derived else call_key
        gov = governor_of(ctx)
        gate = None
        if gov is not None:  # a governed run: its parts are asked around the live call
            governed = GovernedCall(
                "tool", name, clean, journal_key, contract=contract, effect_key=journaled_as
            )  # the parts that read the journal (loop guard, approvals) look it up as it is
            attempts, gate = _governed(gov, ctx, governed, attempts)

        try:
            if ctx is not None:
                value = await ctx.journaled(
                    "tool",
                    # governed, a copy: a part may put other values in the tool's arguments
                    # (the PII guard restores personal data); the journal keeps what was asked
                    {"tool": name, "args": clean if gate is None else dict(clean)},
                    attempts,
                    key=journaled_as,
                    idempotent=contract.idempotent,
                    gate=gate,
                    replay_error=replayed_error(name),
                )
            else:
                value = await attempts()
        except _LimitExhausted as exc:
            return ToolResult(name, False, error=exc.error, attempts=box["attempts"], key=call_key)
        except ToolError as exc:
            return ToolResult(name, False, error=exc, attempts=box["attempts"], key=call_key)
        return ToolResult(name, True, value, attempts=box["attempts"], key=call_key)

    async def _attempts(
        self,
        contract: ToolContract,
        args: dict[str, Any],
        key: str | None,
        tenant: str | None,
        ctx: Any,
        box: dict[str, int],
    ) -> Any:
        breaker = self.breaker(contract)
        limit = effective(contract.max_result_bytes, self.max_result_bytes)
        attempt = 0
        while True:
            attempt += 1
            await self.kill_switch.check(contract, tenant)
            trial = Trial(breaker)  # a half-open trial ends with a verdict or gives way
            try:
                try:
                    await ratelimit.acquire(self.store, contract, tenant)
                except ToolRateLimitedError as exc:
                    raise _LimitExhausted(exc) from None
                box["attempts"] = attempt
                tctx = ToolContext(contract.name, key, attempt, tenant, ctx)
                try:
                    value = await _invoke(contract, args, key, tctx)
                except Exception as raw:
                    err = classify(raw, contract.name)
                    if counts_against_health(err):
                        trial.failure()
                    delay = contract.retry.retry_delay(err, attempt)
                    if delay is None:
                        contract.retry.schedule.note_give_up(
                            err, attempt, retry_after_of(err), who=f"tool {contract.name!r}"
                        )
                        raise err from (raw if raw is not err else None)
                else:
                    trial.success()  # it answered; an oversized answer is not retried
                    return check_result(
                        contract.name, value, limit, has_effect=contract.scope is not Scope.READ
                    )
            finally:
                trial.release()
            await asyncio.sleep(delay)

    # -- many calls at once ----------------------------------------------------------------
    async def call_many(
        self,
        calls: Sequence[tuple[str, Mapping[str, Any] | None]],
        *,
        ctx: Any = None,
        timeout: float | None = None,
        tenant: str | None = None,
    ) -> list[ToolResult]:
        """Independent calls in parallel (a ReWOO plan's workers). Journal keys are assigned in
        list order before anything starts, so a replay pairs each call with its record. Calls
        still running after ``timeout`` are cancelled and come back as ToolTimeoutError."""
        keys = [ctx.call_key(f"tool:{name}") if ctx is not None else None for name, _ in calls]
        tasks = [
            asyncio.create_task(self.call(name, args, ctx=ctx, key=k, tenant=tenant))
            for (name, args), k in zip(calls, keys, strict=True)
        ]
        try:
            done, _ = await asyncio.wait(tasks, timeout=timeout)
        finally:  # cancelled itself, or past the timeout: the calls still running stop
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # every outcome retrieved (none logged as never retrieved); the first escalation or
        # crash of a call is the batch's
        raised = [e for t in done if not t.cancelled() and (e := t.exception()) is not None]
        if raised:
            raise raised[0]
        out: list[ToolResult] = []
        for (name, _), k, t in zip(calls, keys, tasks, strict=True):
            if t in done and not t.cancelled():
                out.append(t.result())
            else:
                out.append(
                    ToolResult(
                        name,
                        False,
                        error=ToolTimeoutError(
                            f"tool {name!r} cancelled: the batch ran past {timeout}s", tool=name
                        ),
                        key=k,
                    )
                )
        return out


async def _invoke(contract: ToolContract, args: dict[str, Any], key: str | None, tctx: Any) -> Any:
    """One attempt under the tool's timeout. A ``CancelledError`` out of the tool while this
    task is not being cancelled (the tool awaited a future someone else cancelled) is the
    tool's failure, not a cancellation of the run."""
    try:
        if contract.timeout is not None:
            return await asyncio.wait_for(
                contract.invoke(args, key=key, ctx=tctx), contract.timeout
            )
        return await contract.invoke(args, key=key, ctx=tctx)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise ToolError(
            f"tool {contract.name!r} raised CancelledError (something it awaited was "
            "cancelled; the call itself was not)",
            tool=contract.name,
        ) from exc
