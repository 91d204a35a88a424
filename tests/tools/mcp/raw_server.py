"""A hand-written MCP server over stdio (JSON-RPC lines), for what the SDK's servers never send.

``RAW_TOOLS`` (JSON) is the tool list it publishes; ``RAW_CURSOR`` set makes every page of
``tools/list`` end with that cursor (a paging that loops). A call answers with the tool's name
and arguments as text; a call with a ``bytes`` argument answers that many bytes of text (after
the result when ``RAW_ID_LAST`` is set, as JSON allows, and as the TypeScript SDK's servers
write every answer), written in pieces of 64 KiB; with ``RAW_HOLD_BIG`` set it first reads the
next request, so the client has two calls waiting when the large answer comes.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    tools = json.loads(os.environ.get("RAW_TOOLS", "[]"))
    cursor = os.environ.get("RAW_CURSOR")
    held: list[str] = []
    lines = iter(sys.stdin)
    while (line := held.pop() if held else next(lines, None)) is not None:
        msg = json.loads(line)
        if "id" not in msg:
            continue  # a notification
        method, params = msg.get("method"), msg.get("params") or {}
        if method == "initialize":
            result = {
                "protocolVersion": params["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0"},
            }
        elif method == "tools/list":
            result = {"tools": tools, **({"nextCursor": cursor} if cursor else {})}
        elif method == "tools/call" and "bytes" in (params.get("arguments") or {}):
            if os.environ.get("RAW_HOLD_BIG"):
                held.append(sys.stdin.readline())  # the next request waits too
            big(
                msg["id"], params["arguments"]["bytes"], id_last=bool(os.environ.get("RAW_ID_LAST"))
            )
            continue
        elif method == "tools/call":
            args = json.dumps(params.get("arguments"), sort_keys=True)
            result = {"content": [{"type": "text", "text": f"{params['name']} {args}"}]}
        else:
            err = {"code": -32601, "message": f"no method {method}"}
            print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": err}), flush=True)
            continue
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)


def big(request_id: int | str, size: int, *, id_last: bool) -> None:
    rid = json.dumps(request_id)
    head = '{"jsonrpc": "2.0", ' + ("" if id_last else f'"id": {rid}, ')
    sys.stdout.write(head + '"result": {"content": [{"type": "text", "text": "')
    piece = "x" * 65536
    for _ in range(size // len(piece)):
        sys.stdout.write(piece)
    sys.stdout.write("x" * (size % len(piece)))
    sys.stdout.write('"}]}' + (f', "id": {rid}' if id_last else "") + "}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
