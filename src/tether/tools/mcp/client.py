"""Import the tools of an MCP server as ToolContracts.

    async with McpToolset.stdio("npx", ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
                                prefix="fs.") as fs:
        registry = ToolRegistry(fs.tools)

Each remote tool becomes an :class:`McpToolContract`: its arguments are validated against the
tool's ``inputSchema`` before anything is sent, its scope and idempotency come from the tool's
annotations, and calling it calls the tool over the toolset's session. The contracts work while
the toolset is open; a session that breaks (the server process died, the connection dropped) is
re-opened by the next call, or, with ``reconnect=False``, fails that call and every later one at
once with :class:`McpSessionClosedError` (not retried).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import anyio
import httpx2
import pydantic
from mcp import Client, StdioServerParameters
from mcp.client import Transport
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
    CallToolResult,
    ContentBlock,
    Implementation,
    RequestParamsMeta,
    TextContent,
    Tool,
    ToolAnnotations,
)

from tether.core.errors import (
    ConfigurationError,
    ToolArgumentsError,
    ToolError,
    ToolNotFoundError,
    ToolRateLimitedError,
    ToolTimeoutError,
    ToolTransientError,
)
from tether.tools.contract import KEY_PARAM, ToolContract
from tether.tools.mcp._version import TETHER_VERSION
from tether.tools.mcp.schema import ArgumentsSchema, args_model_for, format_problems
from tether.tools.policies import NO_TOOL_RETRY, Scope, ToolRetry

log = logging.getLogger(__name__)

META_IDEMPOTENCY_KEY = "tether/idempotency-key"
"""Request ``_meta`` entry carrying the call's idempotency key to the server (tether servers pass
it on to the tool; other servers ignore it)."""
META_ERROR = "tether/error"
"""Result ``_meta`` entry of a failed call on a tether server: the error class and whether
retrying helps, so the error keeps its retry semantics across the wire."""

CLIENT_INFO = Implementation(name="tether", version=TETHER_VERSION)
_MAX_PAGES = 100
_HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
_TRANSPORT_ERRORS = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    OSError,
    httpx2.TransportError,
)


class McpToolError(ToolError):
    """The MCP tool reported a failure (an ``isError`` result) or the server answered the call
    with an error. Not retried: the message goes back to the planner."""

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        code: int | None = None,
        content: list[Any] | None = None,
        structured: Any = None,
    ) -> None:
        super().__init__(message, tool=tool)
        self.code = code
        self.content = content or []
        self.structured = structured


class McpSessionClosedError(ToolError):
    """The session with the MCP server broke (its process died, the connection dropped) and the
    toolset was made with ``reconnect=False``: the call fails at once and is not retried (a call
    in flight when the session broke may or may not have run on the server)."""


def scope_of(annotations: ToolAnnotations | None) -> Scope:
    """The tether scope of an MCP tool. Per the MCP spec an unannotated tool may modify its
    environment (``readOnlyHint`` defaults to false) destructively (``destructiveHint`` defaults
    to true), so only an explicit ``destructiveHint: false`` makes a write tool non-destructive."""
    if annotations is not None and annotations.read_only_hint:
        return Scope.READ
    if annotations is not None and annotations.destructive_hint is False:
        return Scope.WRITE
    return Scope.DESTRUCTIVE


def is_idempotent(annotations: ToolAnnotations | None) -> bool:
    """``idempotentHint`` when the server sets it; otherwise read-only tools are idempotent
    (they change nothing, so repeating them is safe) and the others are not."""
    if annotations is not None and annotations.idempotent_hint is not None:
        return annotations.idempotent_hint
    return scope_of(annotations) is Scope.READ


@dataclass(slots=True)
class McpToolContract(ToolContract):
    """A tool on an MCP server. Arguments are checked against the tool's JSON Schema and passed
    on as given (nothing is coerced or filled in: the server applies its own defaults)."""

    remote_name: str = ""
    output_schema: dict[str, Any] | None = None
    arguments_schema: ArgumentsSchema | None = None

    def validate(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise ToolArgumentsError(
                f"tool {self.name!r} takes an object of named arguments, got {type(args).__name__}",
                tool=self.name,
            )
        clean = dict(args)
        if self.arguments_schema is not None:
            problems = self.arguments_schema.problems(clean)
            if problems:
                raise ToolArgumentsError(
                    f"invalid arguments for tool {self.name!r}: {format_problems(problems)}",
                    tool=self.name,
                    errors=[p.as_dict() for p in problems],
                )
        return clean


class _Connection:
    """One MCP client session, opened and closed by a task of its own: the SDK's task groups and
    cancel scopes must be exited by the task that entered them, and this way the toolset can be
    opened, used, re-opened and closed from any task."""

    def __init__(self, connect: Callable[[], Client]) -> None:
        self._connect = connect
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.broken = False

    async def open(self, timeout: float | None) -> Client:
        self._task = asyncio.create_task(self._run(), name="tether-mcp-session")
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._ready)
        except BaseException:
            await self.close()
            raise

    async def _run(self) -> None:
        try:
            async with self._connect() as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except asyncio.CancelledError:
            if not self._ready.done():
                self._ready.cancel()
            raise
        except Exception as exc:  # handed to the opener or logged, never lost
            if not self._ready.done():
                self._ready.set_exception(_root_cause(exc))
            else:
                log.debug("MCP session ended with an error: %r", exc)
        finally:
            self.broken = True

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is None:
            return
        if not self._ready.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _root_cause(exc: BaseException) -> BaseException:
    """The one real error inside the SDK's (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def _http_transport(
    url: str, headers: Mapping[str, str] | None, timeout: httpx2.Timeout
) -> AsyncIterator[Any]:
    async with (
        httpx2.AsyncClient(headers=dict(headers or {}), timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


class McpToolset:
    """The tools of one MCP server as ToolContracts, over one session.

    Open it with ``async with`` (or :meth:`open` / :meth:`close`); ``tools`` lists the contracts.
    ``prefix`` is put before every tool name (``prefix="fs."`` turns ``read_file`` into
    ``fs.read_file``) so tools of several servers do not clash. ``timeout`` is each contract's
    timeout (and the longest a call waits for the server's answer). ``reconnect=False`` makes a
    broken session final: the call that finds it broken fails with McpSessionClosedError, which
    no retry policy retries.
    """

    def __init__(
        self,
        connect: Callable[[], Client],
        *,
        target: str,
        prefix: str = "",
        timeout: float | None = 30.0,
        connect_timeout: float | None = 30.0,
        reconnect: bool = True,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ConfigurationError("McpToolset timeout must be > 0 seconds or None")
        self._connect = connect
        self.target = target
        self.prefix = prefix
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self._conn: _Connection | None = None
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._tools: list[McpToolContract] | None = None
        self._closed = False

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | Path | None = None,
        prefix: str = "",
        timeout: float | None = 30.0,
        connect_timeout: float | None = 30.0,
        reconnect: bool = True,
    ) -> McpToolset:
        """A server started as a subprocess, speaking MCP over its stdin/stdout. ``env`` is added
        to a minimal inherited environment (PATH, HOME, ...), as the MCP SDK does."""
        params = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env is not None else None, cwd=cwd
        )
        return cls(
            lambda: Client(params, client_info=CLIENT_INFO, cache=None),
            target=" ".join([command, *args]),
            prefix=prefix,
            timeout=timeout,
            connect_timeout=connect_timeout,
            reconnect=reconnect,
        )

    @classmethod
    def http(
        cls,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        prefix: str = "",
        timeout: float | None = 30.0,
        connect_timeout: float | None = 30.0,
        reconnect: bool = True,
    ) -> McpToolset:
        """A server at a streamable HTTP endpoint (``http://host:port/mcp``); ``headers`` go with
        every request (``{"Authorization": "Bearer ..."}``)."""
        hdrs = dict(headers or {})

        def connect() -> Client:
            transport = cast(Transport, _http_transport(url, hdrs, _HTTP_TIMEOUT))
            return Client(transport, client_info=CLIENT_INFO, cache=None)

        return cls(
            connect,
            target=url,
            prefix=prefix,
            timeout=timeout,
            connect_timeout=connect_timeout,
            reconnect=reconnect,
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> Self:
        """Connect and import the server's tools."""
        if self._tools is not None or self._closed:
            raise ConfigurationError("an McpToolset is opened once; make a new one")
        client = await self._session()
        try:
            listed = await self._list_tools(client)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, Exception):
                raise ToolTransientError(
                    f"cannot list the tools of MCP server {self.target!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            raise
        self._tools = [self._contract(t) for t in listed]
        log.debug("imported %d MCP tools from %s", len(self._tools), self.target)
        return self

    async def close(self) -> None:
        self._closed = True
        conn, self._conn, self._client = self._conn, None, None
        if conn is not None:
            await conn.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the contracts ---------------------------------------------------------------------
    @property
    def tools(self) -> list[ToolContract]:
        if self._tools is None:
            raise ConfigurationError(
                f"MCP toolset {self.target!r} is not open; use `async with McpToolset...`"
            )
        return list(self._tools)

    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    def get(self, name: str) -> ToolContract:
        for t in self.tools:
            if t.name == name:
                return t
        raise ToolNotFoundError(
            f"MCP toolset {self.target!r} has no tool {name!r}; it has {self.names()}", tool=name
        )

    def __iter__(self) -> Iterator[ToolContract]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    @property
    def server_info(self) -> Implementation | None:
        return self._client.server_info if self._client is not None else None

    # -- internals -------------------------------------------------------------------------
    async def _session(self) -> Client:
        if self._closed:
            raise ToolError(
                f"MCP toolset {self.target!r} is closed; call its tools inside "
                "`async with McpToolset...`"
            )
        async with self._lock:
            if self._conn is not None and self._client is not None and not self._conn.broken:
                return self._client
            if self._conn is not None:
                if not self.reconnect:
                    raise self._closed_error()
                old, self._conn, self._client = self._conn, None, None
                await old.close()
            conn = _Connection(self._connect)
            try:
                client = await conn.open(self.connect_timeout)
            except TimeoutError:
                raise ToolTransientError(
                    f"MCP server {self.target!r} did not answer within {self.connect_timeout}s"
                ) from None
            except Exception as exc:
                raise ToolTransientError(
                    f"cannot connect to MCP server {self.target!r}: {type(exc).__name__}: {exc}"
                ) from exc
            self._conn, self._client = conn, client
            return client

    def _closed_error(self, tool: str | None = None, why: str = "") -> McpSessionClosedError:
        during = f" during a call of {tool!r} ({why})" if tool is not None else ""
        return McpSessionClosedError(
            f"the session with MCP server {self.target!r} broke{during} and reconnect is off: "
            "open a new McpToolset, or make it with reconnect=True to re-open the session on "
            "the next call",
            tool=tool,
        )

    async def _list_tools(self, client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            try:
                page = await client.list_tools(cursor=cursor)
            except MCPError as exc:
                if exc.code == METHOD_NOT_FOUND:  # a server without tools
                    return tools
                raise
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    def _contract(self, remote: Tool) -> McpToolContract:
        name = f"{self.prefix}{remote.name}"
        schema = ArgumentsSchema(remote.input_schema, tool=name)
        props = remote.input_schema.get("properties")
        wants_key = not (isinstance(props, Mapping) and KEY_PARAM in props)
        ann = remote.annotations
        scope, idempotent = scope_of(ann), is_idempotent(ann)
        remote_name = remote.name
        output_schema = remote.output_schema
        toolset = self

        async def call(**kwargs: Any) -> Any:
            key = kwargs.pop(KEY_PARAM, None) if wants_key else None
            return await toolset._call(name, remote_name, kwargs, key, output_schema)

        title = remote.title or (ann.title if ann is not None else None)
        return McpToolContract(
            name=name,
            description=remote.description or title or remote.name,
            fn=call,
            args_model=args_model_for(name, schema),
            scope=scope,
            idempotent=idempotent,
            timeout=self.timeout,
            retry=ToolRetry() if idempotent else NO_TOOL_RETRY,
            is_async=True,
            wants_key=wants_key,
            metadata={
                "mcp": {
                    "server": self.target,
                    "tool": remote.name,
                    "title": title,
                    "annotations": ann.model_dump(by_alias=True, exclude_none=True) if ann else {},
                    "output_schema": output_schema,
                }
            },
            remote_name=remote_name,
            output_schema=output_schema,
            arguments_schema=schema,
        )

    async def _call(
        self,
        name: str,
        remote_name: str,
        args: dict[str, Any],
        key: str | None,
        output_schema: dict[str, Any] | None,
    ) -> Any:
        client = await self._session()
        conn = self._conn
        meta = cast(RequestParamsMeta, {META_IDEMPOTENCY_KEY: key}) if key is not None else None
        try:
            result = await client.call_tool(
                remote_name, args, read_timeout_seconds=self.timeout, meta=meta
            )
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                if conn is not None:
                    conn.broken = True
                if not self.reconnect:
                    raise self._closed_error(name, f"MCP error {exc.code}: {exc.message}") from exc
            raise _from_mcp_error(exc, name) from None
        except _TRANSPORT_ERRORS as exc:
            if conn is not None:
                conn.broken = True
            if not self.reconnect:
                raise self._closed_error(name, f"{type(exc).__name__}: {exc}") from exc
            raise ToolTransientError(
                f"tool {name!r}: connection to MCP server {self.target!r} "
                f"failed: {type(exc).__name__}: {exc}",
                tool=name,
            ) from exc
        except (RuntimeError, pydantic.ValidationError) as exc:
            # The SDK's check of the result against the tool's outputSchema, or a malformed answer
            raise McpToolError(
                f"tool {name!r}: bad answer from MCP server: {exc}", tool=name
            ) from exc
        if result.is_error:
            raise _from_error_result(result, name)
        return result_value(result, output_schema)


# -- results ------------------------------------------------------------------------------------
def _is_wrapped(schema: dict[str, Any] | None) -> bool:
    """Whether an outputSchema is the ``{"result": ...}`` wrapper that servers put around a value
    that is not an object (the MCP SDK's servers and tether's do)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return False
    props = schema.get("properties")
    return (
        isinstance(props, dict)
        and set(props) == {"result"}
        and schema.get("required") == ["result"]
    )


def result_value(result: CallToolResult, output_schema: dict[str, Any] | None = None) -> Any:
    """What a call returns: the structured content when there is some (unwrapped from
    ``{"result": ...}`` when the output schema is that wrapper), else the text of the content
    blocks joined with newlines, else (images, audio, resources in the mix) a list of the blocks,
    text as strings and the others as their MCP dicts."""
    data = result.structured_content
    if data is not None:
        if _is_wrapped(output_schema) and isinstance(data, dict) and set(data) == {"result"}:
            return data["result"]
        return data
    return content_value(result.content)


def content_value(blocks: Sequence[ContentBlock]) -> Any:
    if not blocks:
        return None
    if all(isinstance(b, TextContent) for b in blocks):
        return "\n".join(cast(TextContent, b).text for b in blocks)
    return [
        b.text
        if isinstance(b, TextContent)
        else b.model_dump(mode="json", by_alias=True, exclude_none=True)
        for b in blocks
    ]


def _error_text(result: CallToolResult) -> str:
    parts = [b.text if isinstance(b, TextContent) else f"[{b.type}]" for b in result.content]
    return "\n".join(parts) or "the MCP tool reported an error without a message"


def _from_error_result(result: CallToolResult, name: str) -> ToolError:
    text = _error_text(result)
    info = (result.meta or {}).get(META_ERROR)
    if isinstance(info, dict):
        kind = info.get("type")
        if kind == "ToolArgumentsError":
            errors = info.get("errors")
            return ToolArgumentsError(
                text, tool=name, errors=errors if isinstance(errors, list) else None
            )
        if info.get("retryable") is True:
            if kind == "ToolRateLimitedError":
                after = info.get("retry_after")
                return ToolRateLimitedError(
                    text,
                    tool=name,
                    retry_after=float(after) if isinstance(after, int | float) else None,
                )
            if kind == "ToolTimeoutError":
                return ToolTimeoutError(text, tool=name)
            status = info.get("status")
            return ToolTransientError(
                text, tool=name, status=status if isinstance(status, int) else None
            )
    return McpToolError(
        text,
        tool=name,
        content=[
            b.model_dump(mode="json", by_alias=True, exclude_none=True) for b in result.content
        ],
        structured=result.structured_content,
    )


def _from_mcp_error(exc: MCPError, name: str) -> ToolError:
    msg = f"tool {name!r}: MCP error {exc.code}: {exc.message}"
    if exc.code == REQUEST_TIMEOUT:
        return ToolTimeoutError(msg, tool=name)
    if exc.code in (CONNECTION_CLOSED, INTERNAL_ERROR):
        return ToolTransientError(msg, tool=name)
    if exc.code == INVALID_PARAMS:
        return ToolArgumentsError(msg, tool=name)
    return McpToolError(msg, tool=name, code=exc.code)
