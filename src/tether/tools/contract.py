"""ToolContract: everything tether knows about a tool, built from a typed function by ``@tool``."""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, PydanticUserError, TypeAdapter, create_model
from pydantic import ValidationError as PydanticValidationError

from tether.core.errors import ConfigurationError, TetherSignal, ToolArgumentsError, ToolError
from tether.core.json_copy import error_text
from tether.core.messages import ToolSpec
from tether.tools.fitness import unfit_problems
from tether.tools.limits import INHERIT, ToolLimit, checked_limit
from tether.tools.policies import NO_TOOL_RETRY, BreakerPolicy, RateLimit, Scope, ToolRetry

KEY_PARAM = "idempotency_key"
"""A tool function with a parameter of this name receives the call's idempotency key."""
CTX_PARAM = "ctx"
"""A tool function with a parameter of this name receives the tool context (run, tenant...)."""


KeyRule = Callable[..., str]
"""An ``idempotency_key`` rule: ``rule(args)`` or ``rule(args, tenant)`` returns the key."""


def _key_takes_tenant(tool: str, rule: Any) -> bool:
    """Whether ``rule`` takes ``(args, tenant)``; refuses what cannot be a key rule."""
    if rule is None:
        return False
    hint = "e.g. idempotency_key=lambda a: f\"order-{a['order_id']}\""
    if not callable(rule):
        raise ConfigurationError(
            f"tool {tool!r}: idempotency_key must be a function of the arguments, got "
            f"{rule!r} ({hint})"
        )
    try:
        params = list(inspect.signature(rule).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: called with the args
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return False
    if not positional or len(required) > 2:
        raise ConfigurationError(
            f"tool {tool!r}: an idempotency_key rule takes the arguments (a dict), and "
            f"optionally the tenant, as its one or two parameters; this one has "
            f"{len(positional)} positional ({len(required)} required) ({hint})"
        )
    return len(positional) >= 2


@dataclass(slots=True)
class ToolContract:
    """A tool with its governance: validated arguments, scope, idempotency, timeout, retry per
    error class, rate limit, circuit breaker and an optional compensation (undo) for sagas."""

    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    scope: Scope = Scope.READ
    idempotent: bool = False
    idempotency_key: KeyRule | None = None
    """Derives the key from the arguments (e.g. ``lambda a: a["order_id"]``): calls with the same
    derived key are one effect, whichever run (or MCP client) makes them. A rule of two
    arguments also gets the tenant the call acts for (``lambda a, tenant: f"{tenant}:{...}"``),
    for ids that are unique only within a tenant. Without it the key is the journal's (run id,
    step, task and call index: unique per run, the same on replay), or a one-off key outside a
    run."""
    timeout: float | None = 30.0
    retry: ToolRetry = NO_TOOL_RETRY
    rate_limit: RateLimit | None = None
    breaker: BreakerPolicy | None = None
    compensate: ToolContract | None = None
    result_adapter: TypeAdapter[Any] | None = None
    is_async: bool = False
    wants_ctx: bool = False
    wants_key: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    max_result_bytes: ToolLimit = INHERIT
    """The largest result (bytes of its JSON) the executor accepts from this tool; None for no
    limit; unset (``INHERIT``), the executor's (``tether.tools.limits``)."""
    max_args_bytes: ToolLimit = INHERIT
    """The largest arguments (bytes of their JSON) the executor passes to this tool, likewise."""
    key_takes_tenant: bool = field(init=False, default=False)
    """Whether the ``idempotency_key`` rule takes the tenant as its second argument."""

    def __post_init__(self) -> None:
        self.key_takes_tenant = _key_takes_tenant(self.name, self.idempotency_key)
        for what in ("max_result_bytes", "max_args_bytes"):
            checked_limit(getattr(self, what), f"tool {self.name!r}: {what}", inherit=True)

    # -- schemas -------------------------------------------------------------------------
    @property
    def input_schema(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()

    @property
    def result_schema(self) -> dict[str, Any] | None:
        return self.result_adapter.json_schema() if self.result_adapter is not None else None

    def spec(self) -> dict[str, Any]:
        """Provider-neutral description for a model: name, description, JSON schema."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }

    def tool_spec(self) -> ToolSpec:
        """This tool as the model plane's :class:`ToolSpec` (scope included)."""
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=self.input_schema,
            scope=self.scope.value,
        )

    def openai_spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.input_schema,
            },
        }

    # -- calling -------------------------------------------------------------------------
    def named_args(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """``args`` as a dict of named arguments (None: none), or ToolArgumentsError when the
        model sent something else."""
        if args is None:
            return {}
        if not isinstance(args, Mapping):
            raise ToolArgumentsError(
                f"tool {self.name!r} takes an object of named arguments, got {type(args).__name__}",
                tool=self.name,
            )
        return dict(args)

    def validate(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validated, coerced arguments, or ToolArgumentsError saying what is wrong."""
        named = self.named_args(args)
        try:
            model = self.args_model.model_validate(named)
        except PydanticValidationError as exc:
            raise self._invalid(
                [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            ) from None
        # a nested model keeps its own config (NaN allowed): its fields are checked here, and
        # no integer is beyond what the journal keeps
        bad = unfit_problems(model)
        if bad:
            raise self._invalid(bad)
        return {k: getattr(model, k) for k in type(model).model_fields}

    def _invalid(self, errors: list[dict[str, Any]]) -> ToolArgumentsError:
        problems = [f"{'.'.join(map(str, e['loc'])) or '(arguments)'}: {e['msg']}" for e in errors]
        return ToolArgumentsError(
            f"invalid arguments for tool {self.name!r}: " + "; ".join(problems),
            tool=self.name,
            errors=errors,
        )

    def derive_key(self, args: dict[str, Any], tenant: str | None = None) -> str | None:
        """The key the ``idempotency_key`` rule makes of validated ``args`` (and, for a rule of
        two arguments, the ``tenant`` the call acts for), or None without a rule; a rule that
        raises or makes no non-empty string is a ToolError saying so."""
        rule = self.idempotency_key
        if rule is None:
            return None
        try:
            key = rule(args, tenant) if self.key_takes_tenant else rule(args)
        except Exception as exc:
            raise ToolError(
                f"tool {self.name!r}: its idempotency_key rule raised {type(exc).__name__}: "
                f"{exc}; the rule gets the validated arguments as a dict (optional arguments "
                "left out hold their defaults)",
                tool=self.name,
            ) from exc
        if not isinstance(key, str) or not key:
            raise ToolError(
                f"tool {self.name!r}: its idempotency_key rule returned {key!r}; it must return "
                "a non-empty string (e.g. lambda a: f\"order-{a['order_id']}\")",
                tool=self.name,
            )
        return key

    async def invoke(self, args: dict[str, Any], *, key: str | None = None, ctx: Any = None) -> Any:
        """Call the function once with validated ``args`` (no governance: the executor adds it).
        Sync functions run in a worker thread so a blocking tool never stalls the event loop."""
        kwargs = dict(args)
        if self.wants_key:
            kwargs[KEY_PARAM] = key
        if self.wants_ctx:
            kwargs[CTX_PARAM] = ctx
        try:
            if self.is_async:
                result = await self.fn(**kwargs)
            else:
                result = await asyncio.to_thread(self.fn, **kwargs)
        except Exception:
            raise
        except (asyncio.CancelledError, GeneratorExit):
            raise  # this call cancelled, or its coroutine closed: not the tool's failure
        except TetherSignal:
            raise  # control flow (an interrupt, an approval, a guard): parks the run
        except KeyboardInterrupt as exc:
            if self.is_async:
                raise  # raised on the event loop's thread: it may be a real Ctrl-C
            raise _escaped(self.name, exc) from exc  # a worker thread gets no Ctrl-C
        except BaseException as exc:
            raise _escaped(self.name, exc) from exc
        if self.result_adapter is not None:
            try:
                self.result_adapter.validate_python(result)
            except PydanticValidationError as exc:
                raise TypeError(
                    f"tool {self.name!r} returned {type(result).__name__}, which does not match "
                    f"its declared result type: {exc.errors()[0]['msg']}"
                ) from None
        return result

    async def __call__(self, **args: Any) -> Any:
        """Direct call (validation only, no journal, retry or limits): handy in tests."""
        return await self.invoke(self.validate(args))


def _escaped(name: str, exc: BaseException) -> ToolError:
    """The call's failure for a ``BaseException`` out of a tool (``SystemExit`` from a
    ``sys.exit()`` in a library it calls, a library's own ``BaseException``): left to
    propagate it would end the worker's process, or stop the event loop of every run in it."""
    text = error_text(exc)
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    hint = (
        " (a sys.exit() in the tool or a library it calls, e.g. argparse on a bad flag)"
        if isinstance(exc, SystemExit)
        else ""
    )
    return ToolError(
        f"tool {name!r} raised {what}{hint}; a tool cannot end the process or stop the event "
        "loop, so this fails the call (not retried): raise an Exception to fail a call",
        tool=name,
    )


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    scope: Scope | str = Scope.READ,
    idempotent: bool | None = None,
    idempotency_key: KeyRule | None = None,
    timeout: float | None = 30.0,
    retry: ToolRetry | None = None,
    rate_limit: RateLimit | None = None,
    breaker: BreakerPolicy | None = None,
    compensate: ToolContract | Callable[..., Any] | None = None,
    metadata: dict[str, Any] | None = None,
    max_result_bytes: ToolLimit = INHERIT,
    max_args_bytes: ToolLimit = INHERIT,
) -> Any:
    """Turn a typed function (sync or async) into a ToolContract.

    Arguments come from the signature (pydantic validates them; ``Annotated[int, Field(...)]``
    adds constraints and descriptions); the description from the docstring. Read tools are
    idempotent unless told otherwise; write and destructive tools are not. ``max_result_bytes``
    / ``max_args_bytes`` bound its result and arguments (None: no limit; unset: the executor's).

    >>> @tool(scope="write", idempotent=True, idempotency_key=lambda a: a["order_id"])
    ... async def charge(order_id: str, cents: int, idempotency_key: str) -> str:
    ...     '''Charge an order.'''
    ...     return f"ch_{order_id}"
    """

    def build(f: Callable[..., Any]) -> ToolContract:
        return _build(
            f,
            name=name,
            description=description,
            scope=scope,
            idempotent=idempotent,
            idempotency_key=idempotency_key,
            timeout=timeout,
            retry=retry,
            rate_limit=rate_limit,
            breaker=breaker,
            compensate=compensate,
            metadata=metadata,
            limits=(max_result_bytes, max_args_bytes),
        )

    return build(fn) if fn is not None else build


def _build(
    f: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    scope: Scope | str,
    idempotent: bool | None,
    idempotency_key: KeyRule | None,
    timeout: float | None,
    retry: ToolRetry | None,
    rate_limit: RateLimit | None,
    breaker: BreakerPolicy | None,
    compensate: ToolContract | Callable[..., Any] | None,
    metadata: dict[str, Any] | None,
    limits: tuple[ToolLimit, ToolLimit] = (INHERIT, INHERIT),
) -> ToolContract:
    if not callable(f):
        raise ConfigurationError(f"@tool needs a function, got {f!r}")
    tool_name = name or f.__name__
    if not tool_name.replace("_", "a").replace("-", "a").replace(".", "a").isalnum():
        raise ConfigurationError(
            f"tool name {tool_name!r} must use letters, digits, '_', '-' or '.' only"
        )
    try:
        scope = Scope(scope)
    except ValueError:
        raise ConfigurationError(
            f"tool {tool_name!r}: unknown scope {scope!r}; use one of {[s.value for s in Scope]}"
        ) from None
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)  # NaN would never time out, nor ever compare
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"tool {tool_name!r}: timeout must be a finite number of seconds > 0 or None, got "
            f"{timeout!r}"
        )
    try:
        hints = get_type_hints(f, include_extras=True)
    except Exception as exc:
        raise ConfigurationError(f"tool {tool_name!r}: cannot read its type hints: {exc}") from exc
    sig = inspect.signature(f)
    fields: dict[str, Any] = {}
    wants_ctx = wants_key = False
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigurationError(
                f"tool {tool_name!r}: *args/**kwargs cannot be described to a model; "
                "declare each argument"
            )
        if pname == CTX_PARAM:
            wants_ctx = True
            continue
        if pname == KEY_PARAM:
            wants_key = True
            continue
        if pname not in hints:
            raise ConfigurationError(
                f"tool {tool_name!r}: argument {pname!r} needs a type annotation"
            )
        default = ... if param.default is param.empty else param.default
        fields[pname] = (hints[pname], default)
    try:
        args_model = create_model(
            f"{tool_name}_args",
            __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
            **fields,
        )
        args_model.model_json_schema()  # what a model is shown: fails here, not at a call
    except PydanticUserError as exc:
        raise ConfigurationError(
            f"tool {tool_name!r}: its arguments cannot be described to a model "
            f"({_gist(exc)}); "
            "annotate them with JSON-ready types (str, int, float, bool, lists, dicts), "
            "pydantic models, dataclasses or TypedDicts"
        ) from exc
    ret = hints.get("return", inspect.Signature.empty)
    result_adapter = None
    if ret not in (inspect.Signature.empty, Any, None, type(None)):
        try:
            result_adapter = TypeAdapter(ret)
            result_adapter.json_schema()
        except PydanticUserError as exc:
            raise ConfigurationError(
                f"tool {tool_name!r}: its return type {ret!r} cannot be checked "
                f"({_gist(exc)}); "
                "return a JSON-ready value, a pydantic model, a dataclass or a TypedDict, or "
                "annotate the return as Any"
            ) from exc
    doc = inspect.getdoc(f) or ""
    desc = description if description is not None else doc.split("\n\n")[0].strip()
    if idempotent is None:
        idempotent = scope is Scope.READ
    comp: ToolContract | None
    if compensate is None or isinstance(compensate, ToolContract):
        comp = compensate
    else:
        comp = tool(compensate, scope=scope, idempotent=True, timeout=timeout)
    return ToolContract(
        name=tool_name,
        description=desc or tool_name,
        fn=f,
        args_model=args_model,
        scope=scope,
        idempotent=idempotent,
        idempotency_key=idempotency_key,
        timeout=timeout,
        retry=retry or (ToolRetry() if idempotent else NO_TOOL_RETRY),
        rate_limit=rate_limit,
        breaker=breaker,
        compensate=comp,
        result_adapter=result_adapter,
        is_async=inspect.iscoroutinefunction(f),
        wants_ctx=wants_ctx,
        wants_key=wants_key,
        metadata=dict(metadata or {}),
        max_result_bytes=limits[0],
        max_args_bytes=limits[1],
    )


def _gist(exc: Exception) -> str:
    """The first sentence of pydantic's schema error: what it could not describe (its advice,
    ``arbitrary_types_allowed``, does not apply to a tool a model must be told about)."""
    return str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else repr(exc)


AsyncToolFn = Callable[..., Awaitable[Any]]
