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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import pydantic
from mcp import Client, StdioServerParameters
from mcp.client import Transport
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, Implementation, RequestParamsMeta, Tool

from tether.core.errors import ConfigurationError, ToolError, ToolNotFoundError, ToolTransientError
from tether.tools.contract import KEY_PARAM, ToolContract
from tether.tools.limits import DEFAULT_MAX_RESULT_BYTES, MiB, checked_limit, result_too_large
from tether.tools.mcp._version import TETHER_VERSION
from tether.tools.mcp.contract import McpToolContract, is_idempotent, scope_of
from tether.tools.mcp.listing import McpListingError, check_prefix, list_tools, vet
from tether.tools.mcp.results import (
    META_ERROR,
    McpToolError,
    content_value,
    from_error_result,
    from_mcp_error,
    result_value,
    too_large_of,
)
from tether.tools.mcp.schema import ArgumentsSchema, args_model_for
from tether.tools.mcp.session import HTTP_TIMEOUT, TRANSPORT_ERRORS, Connection, http_transport
from tether.tools.mcp.stdio import bounded_stdio_client
from tether.tools.policies import NO_TOOL_RETRY, Scope, ToolRetry

log = logging.getLogger(__name__)

__all__ = [
    "META_ERROR",
    "META_IDEMPOTENCY_KEY",
    "McpListingError",
    "McpSessionClosedError",
    "McpToolContract",
    "McpToolError",
    "McpToolset",
    "content_value",
    "is_idempotent",
    "result_value",
    "scope_of",
]

META_IDEMPOTENCY_KEY = "tether/idempotency-key"
"""Request ``_meta`` entry carrying the call's idempotency key to the server (tether servers pass
it on to the tool; other servers ignore it)."""

CLIENT_INFO = Implementation(name="tether", version=TETHER_VERSION)
WIRE_FACTOR = 4
"""A server's message is read up to ``WIRE_FACTOR`` times ``max_result_bytes`` (a result often
comes twice, as text and as structured content, with its JSON escaped), and at least
``MIN_WIRE_BYTES`` (a large tool listing); past that it is refused unread."""
MIN_WIRE_BYTES = 4 * MiB


def wire_limit(max_result_bytes: int | None) -> int | None:
    """How much of one message from the server is read, for a toolset's ``max_result_bytes``."""
    if max_result_bytes is None:
        return None
    return max(WIRE_FACTOR * max_result_bytes, MIN_WIRE_BYTES)


class McpSessionClosedError(ToolError):
    """The session with the MCP server broke (its process died, the connection dropped) and the
    toolset was made with ``reconnect=False``: the call fails at once and is not retried (a call
    in flight when the session broke may or may not have run on the server)."""


class McpToolset:
    """The tools of one MCP server as ToolContracts, over one session.

    Open it with ``async with`` (or :meth:`open` / :meth:`close`); ``tools`` lists the contracts.
    ``prefix`` is put before every tool name (``prefix="fs."`` turns ``read_file`` into
    ``fs.read_file``) so tools of several servers do not clash. ``timeout`` is each contract's
    timeout (and the longest a call waits for the server's answer). ``reconnect=False`` makes a
    broken session final: the call that finds it broken fails with McpSessionClosedError, which
    no retry policy retries. ``max_result_bytes`` is each contract's result limit (see
    ``tether.tools.limits``; None for none), and, for the toolsets ``stdio`` and ``http`` make,
    bounds what is read of one message from the server (``wire_limit``): a larger answer is
    refused unread as ToolResultTooLargeError.
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
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ConfigurationError("McpToolset timeout must be > 0 seconds or None")
        self.max_result_bytes: int | None = checked_limit(
            max_result_bytes, "McpToolset max_result_bytes"
        )
        self.max_message_bytes = wire_limit(self.max_result_bytes)
        self._connect = connect
        self.target = target
        self.prefix = check_prefix(prefix)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self._conn: Connection | None = None
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._tools: list[McpToolContract] | None = None
        self.skipped: dict[str, str] = {}
        """Tools of the server left out of ``tools`` (name with the prefix -> why): a name
        listed twice with different definitions, or one a tool cannot have (see
        ``tether.tools.mcp.listing``)."""
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
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
    ) -> McpToolset:
        """A server started as a subprocess, speaking MCP over its stdin/stdout. ``env`` is added
        to a minimal inherited environment (PATH, HOME, ...), as the MCP SDK does. Its stdout is
        read by ``tether.tools.mcp.stdio`` (linear, bounded), not by the SDK's reader."""
        params = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env is not None else None, cwd=cwd
        )
        limit = wire_limit(checked_limit(max_result_bytes, "McpToolset max_result_bytes"))

        def connect() -> Client:
            transport = cast(Transport, bounded_stdio_client(params, limit))
            return Client(transport, client_info=CLIENT_INFO, cache=None)

        return cls(
            connect,
            target=" ".join([command, *args]),
            prefix=prefix,
            timeout=timeout,
            connect_timeout=connect_timeout,
            reconnect=reconnect,
            max_result_bytes=max_result_bytes,
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
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
    ) -> McpToolset:
        """A server at a streamable HTTP endpoint (``http://host:port/mcp``); ``headers`` go with
        every request (``{"Authorization": "Bearer ..."}``)."""
        hdrs = dict(headers or {})
        limit = wire_limit(checked_limit(max_result_bytes, "McpToolset max_result_bytes"))

        def connect() -> Client:
            transport = cast(Transport, http_transport(url, hdrs, HTTP_TIMEOUT, limit))
            return Client(transport, client_info=CLIENT_INFO, cache=None)

        return cls(
            connect,
            target=url,
            prefix=prefix,
            timeout=timeout,
            connect_timeout=connect_timeout,
            reconnect=reconnect,
            max_result_bytes=max_result_bytes,
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> Self:
        """Connect and import the server's tools."""
        if self._tools is not None or self._closed:
            raise ConfigurationError("an McpToolset is opened once; make a new one")
        client = await self._session()
        try:
            listed = await list_tools(lambda cursor: client.list_tools(cursor=cursor), self.target)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, McpListingError):
                raise
            if isinstance(exc, pydantic.ValidationError):  # a malformed listing: not transient
                raise McpListingError(
                    f"cannot list the tools of MCP server {self.target!r}: {exc}"
                ) from exc
            if isinstance(exc, Exception):
                raise ToolTransientError(
                    f"cannot list the tools of MCP server {self.target!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            raise
        vetted = vet(listed, self.prefix, self.target)
        self.skipped = vetted.skipped
        self._tools = [self._contract(t) for t in vetted.tools]
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
        if name in self.skipped:
            raise ToolNotFoundError(
                f"MCP toolset {self.target!r} left tool {name!r} out: {self.skipped[name]}",
                tool=name,
            )
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
            conn = Connection(self._connect)
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
            return await toolset._call(name, remote_name, kwargs, key, output_schema, scope)

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
            max_result_bytes=self.max_result_bytes,
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
        scope: Scope = Scope.DESTRUCTIVE,
    ) -> Any:
        client = await self._session()
        conn = self._conn
        meta = cast(RequestParamsMeta, {META_IDEMPOTENCY_KEY: key}) if key is not None else None
        try:
            result = await client.call_tool(
                remote_name, args, read_timeout_seconds=self.timeout, meta=meta
            )
        except MCPError as exc:
            refused = too_large_of(exc)
            if refused is not None:  # the transport refused the answer unread
                read, limit = refused
                wire = f" (the MCP server's message, read up to {WIRE_FACTOR}x max_result_bytes)"
                has_effect = scope is not Scope.READ
                raise result_too_large(
                    name, read, limit, has_effect=has_effect, at_least=True, what=wire
                ) from None
            if exc.code == CONNECTION_CLOSED:
                if conn is not None:
                    conn.broken = True
                if not self.reconnect:
                    raise self._closed_error(name, f"MCP error {exc.code}: {exc.message}") from exc
            raise from_mcp_error(exc, name) from None
        except TRANSPORT_ERRORS as exc:
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
            raise from_error_result(result, name)
        return result_value(result, output_schema)
