"""The stdio transport, with a bounded line reader.

The SDK's ``stdio_client`` joins each chunk it reads to the line read so far (``buffer + chunk``)
and splits the whole again, with no bound: one 20 MB answer costs it seconds of CPU per call
(quadratic), and any size is read and parsed. This transport starts the server the same way (its
own session, so the whole process tree is stopped on close; the SDK's safe environment) and reads
its stdout in linear time. A message over ``max_message_bytes`` is refused as soon as that many
bytes are in: the call it answers gets a JSON-RPC error marked ``TOO_LARGE`` (the toolset raises
``ToolResultTooLargeError``), the rest of the line is read and dropped unparsed, and the session
goes on. The call is told by the id in the message's head; where the id comes last (the
TypeScript SDK's servers write ``{"result": ..., "jsonrpc": "2.0", "id": 7}``) and more than one
call waits, the refusal waits for the message's end and reads the id there.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
from anyio.abc import Process
from mcp import StdioServerParameters
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage
from mcp_types import (
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)

log = logging.getLogger("tether.tools.mcp.client")

TOO_LARGE = "tether/message-too-large"
"""``data`` key of the JSON-RPC error that stands for an answer refused for its size: its value
is ``{"limit": bytes, "read": bytes}`` (``read``: how much was in when it was refused)."""
TOO_LARGE_CODE = -32070
"""The code of that error (in JSON-RPC's range for implementation-defined errors)."""
HEAD_BYTES = 4096
"""How much of a refused message is looked at for the id of the request it answers."""
TAIL_BYTES = 256
"""How much of the end of a refused message is kept, for an id written after the result."""
_ID_AT_END = re.compile(rb'[,{]\s*"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*}\s*$')
EXIT_GRACE = 2.0
"""Seconds the server has to exit after its stdin closes, and again after SIGTERM."""


def too_large_error(request_id: Any, limit: int, read: int, what: str) -> SessionMessage:
    """The JSON-RPC error that answers request ``request_id`` in place of a refused message."""
    data = {TOO_LARGE: {"limit": limit, "read": read}}
    error = ErrorData(code=TOO_LARGE_CODE, message=what, data=data)
    return SessionMessage(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


def response_id(head: bytes) -> int | str | None:
    """The id of the response whose first bytes are ``head`` (its top-level keys read in order
    until the one whose value is cut off), or None when it is not a response or the id comes
    after the large part."""
    text = head.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    pos = text.find("{") + 1
    if pos == 0:
        return None
    found: dict[str, Any] = {}
    try:
        while True:
            while text[pos] in " \t\r\n,":
                pos += 1
            key, pos = decoder.raw_decode(text, pos)
            while text[pos] in " \t\r\n:":
                pos += 1
            if key in ("result", "error"):  # the large part: is the id known yet?
                break
            found[key], pos = decoder.raw_decode(text, pos)
    except (ValueError, IndexError):  # cut off before the id: unknown
        return None
    rid = found.get("id")
    if "method" in found or isinstance(rid, bool) or not isinstance(rid, int | str):
        return None
    return rid


def response_id_at_end(tail: bytes) -> int | str | None:
    """The id of the response whose last bytes are ``tail`` when it is its last member
    (``..., "id": 7}``), else None."""
    found = _ID_AT_END.search(tail)
    if found is None:
        return None
    try:
        rid = json.loads(found.group(1))
    except ValueError:
        return None
    return rid if isinstance(rid, int | str) and not isinstance(rid, bool) else None


class LineReader:
    """Splits a byte stream into lines in linear time; a line longer than ``limit`` is refused
    (``on_too_large`` gets its first bytes and its size so far) and dropped."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.dropping = False
        self.dropped = 0
        """Bytes of the line being dropped so far."""
        self.tail = b""
        """Its last ``TAIL_BYTES``."""
        self._ended: tuple[bytes, int] | None = None

    def take_ended(self) -> tuple[bytes, int] | None:
        """The tail and whole size of the dropped line whose end the last ``feed`` read (once),
        else None."""
        ended, self._ended = self._ended, None
        return ended

    def _drop(self, piece: bytes | bytearray) -> None:
        self.dropped += len(piece)
        self.tail = (self.tail + piece[-TAIL_BYTES:])[-TAIL_BYTES:]

    def feed(self, chunk: bytes) -> tuple[list[bytes], tuple[bytes, int] | None]:
        """The whole lines ``chunk`` ends, and the head and size so far of a line it makes too
        long (or None)."""
        lines: list[bytes] = []
        if self.dropping:
            end = chunk.find(b"\n")
            if end < 0:
                self._drop(chunk)
                return lines, None
            self._drop(chunk[:end])
            self.dropping = False
            self._ended = self.tail, self.dropped
            chunk = chunk[end + 1 :]
        start = len(self.buf)
        self.buf += chunk
        begin = 0
        while (end := self.buf.find(b"\n", max(begin, start))) >= 0:
            lines.append(bytes(self.buf[begin:end]))
            begin = start = end + 1
        del self.buf[:begin]
        if self.limit is not None and len(self.buf) > self.limit:
            refused = bytes(self.buf[:HEAD_BYTES]), len(self.buf)
            self.dropped, self.tail = 0, b""
            self._drop(self.buf)
            self.buf.clear()
            self.dropping = True
            return lines, refused
        return lines, None


def parse(line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        log.warning("MCP server sent a line that is not a JSON-RPC message: %s", exc)
        return exc


@asynccontextmanager
async def bounded_stdio_client(
    server: StdioServerParameters, max_message_bytes: int | None
) -> AsyncIterator[Any]:
    """The SDK's ``stdio_client`` with a linear reader bounded at ``max_message_bytes``."""
    process = await anyio.open_process(
        [server.command, *server.args],
        env=get_default_environment() | (server.env or {}),
        stderr=sys.stderr,
        cwd=server.cwd,
        start_new_session=True,
    )
    to_session, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](0)

    pending: set[Any] = set()  # ids of the requests sent and not answered yet

    async def reader() -> None:
        assert process.stdout is not None
        lines = LineReader(max_message_bytes)
        waiting: bytes | None = None  # the head of a refused message whose id comes last
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            async with to_session:
                async for chunk in process.stdout:
                    done, refused = lines.feed(chunk)
                    dropped = lines.take_ended()
                    if waiting is not None and dropped is not None:
                        head, waiting = waiting, None
                        if not await refuse(head, dropped[1], dropped[0]):
                            return  # the session ends: its calls fail as on a lost server
                    for line in done:
                        if line.strip():
                            await to_session.send(answered(parse(line)))
                    if refused is not None:
                        told = await refuse(*refused)
                        if told is None:
                            waiting = refused[0]
                        elif not told:
                            return

    def answered(message: SessionMessage | Exception) -> SessionMessage | Exception:
        reply = message.message if isinstance(message, SessionMessage) else None
        if isinstance(reply, JSONRPCResponse | JSONRPCError):
            pending.discard(reply.id)
        return message

    async def refuse(head: bytes, read: int, tail: bytes | None = None) -> bool | None:
        """Answer the request a refused message answers; False when it cannot be told, None
        when it may be at the message's end (``tail``, once it is read)."""
        limit = max_message_bytes or 0
        rid = response_id(head)
        if rid is None and tail is not None:
            rid = response_id_at_end(tail)
        if rid is None and len(pending) == 1 and b'"method"' not in head:
            rid = next(iter(pending))  # the one call waiting: the answer is its
        what = (
            f"the MCP server's message is larger than {limit} bytes (max_message_bytes): "
            "refused unread"
        )
        if rid is None and tail is None and b'"method"' not in head:
            return None  # a response whose id may come last: wait for its end
        if rid is None:
            log.warning("%s; which call it answers is unknown: the session ends", what)
            return False
        pending.discard(rid)
        await to_session.send(too_large_error(rid, limit, read, what))
        return True

    async def writer() -> None:
        assert process.stdin is not None
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            async with from_session:
                async for message in from_session:
                    if isinstance(message.message, JSONRPCRequest):
                        pending.add(message.message.id)
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send((data + "\n").encode())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)
                for stream in (read_stream, write_stream):
                    await stream.aclose()
            tg.cancel_scope.cancel()


async def _stop(process: Process) -> None:
    """Close the server's stdin, give it ``EXIT_GRACE`` to exit, then stop its process group."""
    assert process.stdin is not None and process.stdout is not None
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdin.aclose()
    with anyio.move_on_after(EXIT_GRACE):
        # polled, as the SDK does: process.wait() also waits for the pipes' EOF
        while process.returncode is None:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    if process.returncode is None:
        await terminate_posix_process_tree(process, EXIT_GRACE)
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdout.aclose()
