"""Expose ToolContracts as an MCP server.

    run_stdio([search, charge])                      # a subprocess server for an MCP client
    app = http_app(registry)                          # an ASGI app (streamable HTTP at /mcp)
    run_http(registry, host="127.0.0.1", port=8000)   # the same, served by uvicorn

Each contract is listed with its input schema, its result schema (as ``outputSchema``) and
annotations from its scope and idempotency. A call validates the arguments, then invokes the
contract (with its timeout); whatever goes wrong — invalid arguments, a ToolError, any exception
— comes back as an ``isError`` result with the message, never as a crash of the server. The
result's ``_meta["tether/error"]`` carries the error class and whether retrying helps, so a tether
client raises the same kind of error. The executor's governance (journal, retries, rate limits,
breakers, kill switches) stays with the caller: the server runs the tool once per call.

The idempotency key a tool receives: the contract's ``idempotency_key`` rule applied to the
arguments when it declares one (the tool's own statement of which calls are one effect, so it
holds whoever calls, as it does in-process, where the rule also beats the run's key); otherwise
the key the client sent in the request's ``_meta["tether/idempotency-key"]`` (the client's dedupe
key: a tether client sends its run-scoped journal key, the same when its run replays the call);
otherwise None.

Sizes: each call's arguments and result are bounded as the executor bounds them
(:mod:`tether.tools.limits`): the tool's own ``max_args_bytes`` / ``max_result_bytes``, else the
server's (``serve_tools(max_result_bytes=...)``, 1 MiB unless told). A result over its limit is
dropped and answered as an ``isError`` result naming its size and the limit
(``ToolResultTooLargeError``), never sent whole to the client.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import anyio
import orjson
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ContentBlock,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)
from pydantic_core import to_jsonable_python
from starlette.applications import Starlette

from tether.core.errors import (
    ConfigurationError,
    ToolArgumentsError,
    ToolError,
    ToolRateLimitedError,
    ToolResultTooLargeError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.tools.contract import ToolContract
from tether.tools.limits import (
    DEFAULT_MAX_ARGS_BYTES,
    DEFAULT_MAX_RESULT_BYTES,
    check_args,
    checked_limit,
    effective,
)
from tether.tools.mcp._version import TETHER_VERSION
from tether.tools.mcp.client import META_ERROR, META_IDEMPOTENCY_KEY
from tether.tools.policies import Scope
from tether.tools.results import ToolContext

log = logging.getLogger(__name__)


# -- listing ------------------------------------------------------------------------------------
def annotations_for(contract: ToolContract) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=contract.scope is Scope.READ,
        destructive_hint=contract.scope is Scope.DESTRUCTIVE,
        idempotent_hint=contract.idempotent,
    )


def output_schema_for(contract: ToolContract) -> tuple[dict[str, Any] | None, bool]:
    """The tool's ``outputSchema`` and whether results are wrapped as ``{"result": value}``
    (MCP wants an object; a contract returning ``int`` or ``list[str]`` gets the wrapper, as
    the MCP SDK's own servers do)."""
    if contract.result_adapter is None:
        return None, False
    schema = contract.result_adapter.json_schema(mode="serialization")
    ref, defs = schema.get("$ref"), schema.get("$defs") or {}
    if isinstance(ref, str) and ref.startswith("#/$defs/") and len(schema) == 2:
        # a recursive model: {"$ref": "#/$defs/Node", "$defs": {...}} -> Node's schema at the root
        target = defs.get(ref.removeprefix("#/$defs/"))
        if isinstance(target, dict) and target.get("type") == "object":
            schema = {**target, "$defs": defs}
    if schema.get("type") == "object":
        return schema, False
    defs = schema.pop("$defs", None)
    wrapped: dict[str, Any] = {
        "type": "object",
        "properties": {"result": schema},
        "required": ["result"],
    }
    if defs:
        wrapped["$defs"] = defs  # refs are "#/$defs/...": they must stay at the root
    return wrapped, True


def tool_definition(contract: ToolContract) -> Tool:
    output_schema, _ = output_schema_for(contract)
    return Tool(
        name=contract.name,
        description=contract.description,
        input_schema=contract.input_schema,
        output_schema=output_schema,
        annotations=annotations_for(contract),
    )


# -- calling ------------------------------------------------------------------------------------
async def call_contract(
    contract: ToolContract,
    arguments: Mapping[str, Any] | None,
    *,
    key: str | None = None,
    max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
    max_args_bytes: int | None = DEFAULT_MAX_ARGS_BYTES,
) -> CallToolResult:
    """Validate, invoke once (within the contract's timeout) and describe the outcome as an MCP
    result. Never raises, except on cancellation. ``key`` is the client's idempotency key; the
    contract's own key rule, when it has one, wins over it. ``max_result_bytes`` /
    ``max_args_bytes``: the limits of a contract that sets none of its own (None: no limit)."""
    name = contract.name
    err: ToolError
    try:
        clean = contract.validate(arguments)
        check_args(name, clean, effective(contract.max_args_bytes, max_args_bytes))
        key = contract.derive_key(clean) or key
        ctx = ToolContext(tool=name, key=key, attempt=1, tenant=None, run=None)
        with anyio.fail_after(contract.timeout):
            value = await contract.invoke(clean, key=key, ctx=ctx)
        limit = effective(contract.max_result_bytes, max_result_bytes)
        return success_result(contract, value, limit)
    except ToolError as exc:
        err = exc
        log.info("MCP call of tool %r failed: %s", name, exc)
    except TimeoutError:
        err = ToolTimeoutError(f"tool {name!r} timed out after {contract.timeout}s", tool=name)
        log.info("MCP call of tool %r timed out", name)
    except Exception as exc:
        err = ToolError(f"tool {name!r} raised {type(exc).__name__}: {exc}", tool=name)
        log.exception("MCP call of tool %r raised", name)
    return error_result(err)


def success_result(
    contract: ToolContract, value: Any, limit: int | None = DEFAULT_MAX_RESULT_BYTES
) -> CallToolResult:
    """The MCP result of ``value``; ToolResultTooLargeError when its JSON is over ``limit``."""
    if contract.result_adapter is not None:
        data = contract.result_adapter.dump_python(value, mode="json")
    else:
        data = to_jsonable_python(value, fallback=str)
    encoded = orjson.dumps(data)
    if limit is not None and len(encoded) > limit:
        raise result_too_large(contract, len(encoded), limit)
    content: list[ContentBlock]
    if data is None:
        content = []
    else:
        text = data if isinstance(data, str) else encoded.decode()
        content = [TextContent(text=text)]
    schema, wrapped = output_schema_for(contract)
    if schema is None:
        return CallToolResult(content=content)
    return CallToolResult(content=content, structured_content={"result": data} if wrapped else data)


def result_too_large(contract: ToolContract, size: int, limit: int) -> ToolResultTooLargeError:
    effect = "" if contract.scope is Scope.READ else " (its effect happened: calling it repeats it)"
    return ToolResultTooLargeError(
        f"tool {contract.name!r} returned {size} bytes (JSON-encoded), over its limit of {limit} "
        f"bytes (max_result_bytes); the call ran{effect} but the server dropped its result. Ask "
        "for less (a narrower query, a page, a summary), or have the server raise the limit: "
        "@tool(max_result_bytes=N) for this tool, or serve_tools(..., max_result_bytes=N) for "
        "every tool without its own; None lifts it",
        tool=contract.name,
        size=size,
        limit=limit,
    )


def error_result(err: ToolError) -> CallToolResult:
    info: dict[str, Any] = {"type": type(err).__name__, "retryable": err.retryable}
    if isinstance(err, ToolResultTooLargeError):
        info.update(size=err.size, limit=err.limit)
    if isinstance(err, ToolRateLimitedError) and err.retry_after is not None:
        info["retry_after"] = err.retry_after
    if isinstance(err, ToolTransientError) and err.status is not None:
        info["status"] = err.status
    if isinstance(err, ToolArgumentsError) and err.errors:
        info["errors"] = to_jsonable_python(err.errors, fallback=str)
    result = CallToolResult(content=[TextContent(text=str(err))], is_error=True)
    result.meta = {META_ERROR: info}
    return result


# -- the server ---------------------------------------------------------------------------------
def serve_tools(
    tools: Iterable[ToolContract],
    *,
    name: str = "tether",
    instructions: str | None = None,
    max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
    max_args_bytes: int | None = DEFAULT_MAX_ARGS_BYTES,
) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) exposing ``tools`` (contracts or a
    ToolRegistry). Run it with :func:`run_stdio` / :func:`http_app` or the SDK directly.
    ``max_result_bytes`` / ``max_args_bytes`` bound the calls of a tool without its own limits
    (bytes of JSON; None: no limit)."""
    limits = {
        "max_result_bytes": checked_limit(max_result_bytes, "serve_tools' max_result_bytes"),
        "max_args_bytes": checked_limit(max_args_bytes, "serve_tools' max_args_bytes"),
    }
    contracts: dict[str, ToolContract] = {}
    for contract in tools:
        if not isinstance(contract, ToolContract):
            raise ConfigurationError(
                f"serve_tools takes ToolContracts (made with @tool), got {contract!r}"
            )
        if contract.name in contracts:
            raise ConfigurationError(f"two tools are named {contract.name!r}")
        contracts[contract.name] = contract
    listing = [tool_definition(c) for c in contracts.values()]
    schemas = {t.name: t.input_schema for t in listing}

    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=listing)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        contract = contracts.get(params.name)
        if contract is None:
            raise MCPError(
                INVALID_PARAMS, f"unknown tool {params.name!r}; this server has {sorted(contracts)}"
            )
        given = (params.meta or {}).get(META_IDEMPOTENCY_KEY)
        return await call_contract(
            contract,
            params.arguments,
            key=given if isinstance(given, str) and given else None,
            **limits,
        )

    return Server(
        name,
        version=TETHER_VERSION,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=schemas.get,
    )


async def serve_stdio(tools: Iterable[ToolContract], *, name: str = "tether") -> None:
    """Serve over this process's stdin/stdout until the client closes stdin. While serving, what
    the tools print to stdout goes to stderr (the SDK diverts it), so the wire stays clean."""
    server = serve_tools(tools, name=name)
    async with stdio_server() as (read, write):
        try:
            await server.run(read, write, server.create_initialization_options())
        finally:
            # Output the tools printed may still sit in sys.stdout's buffer; flushed after the
            # SDK gives fd 1 back to the wire, it would reach the client as garbage.
            sys.stdout.flush()


def run_stdio(tools: Iterable[ToolContract], *, name: str = "tether") -> None:
    """Blocking :func:`serve_stdio`."""
    anyio.run(functools.partial(serve_stdio, tools, name=name))


def http_app(
    tools: Iterable[ToolContract],
    *,
    name: str = "tether",
    path: str = "/mcp",
    host: str = "127.0.0.1",
    json_response: bool = False,
    stateless: bool = False,
) -> Starlette:
    """An ASGI app serving the tools over streamable HTTP at ``path``. ``host`` is where it will
    listen: on localhost the SDK turns on DNS-rebinding protection (Host and Origin checks)."""
    return serve_tools(tools, name=name).streamable_http_app(
        streamable_http_path=path, host=host, json_response=json_response, stateless_http=stateless
    )


async def serve_http(
    tools: Iterable[ToolContract],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    name: str = "tether",
    path: str = "/mcp",
    log_level: str = "warning",
) -> None:
    import uvicorn

    app = http_app(tools, name=name, path=path, host=host)
    await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level)).serve()


def run_http(
    tools: Iterable[ToolContract],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    name: str = "tether",
    path: str = "/mcp",
    log_level: str = "warning",
) -> None:
    """Blocking :func:`serve_http` (uvicorn)."""
    anyio.run(
        functools.partial(serve_http, tools, host, port, name=name, path=path, log_level=log_level)
    )
