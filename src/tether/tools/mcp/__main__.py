"""``python -m tether.tools.mcp --app module:attr``: serve tool contracts as an MCP server.

``attr`` is a list of ToolContracts, a ToolRegistry (any iterable of contracts) or one contract;
``module`` is an importable module or a ``path/to/file.py``. Stdio by default (for an MCP client
that starts this as a subprocess); ``--transport http`` serves streamable HTTP with uvicorn.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Sequence

from tether.core.errors import ConfigurationError
from tether.core.refs import load_ref
from tether.tools.contract import ToolContract


def load_tools(ref: str) -> list[ToolContract]:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj = load_ref(ref)
    if isinstance(obj, ToolContract):
        return [obj]
    if not isinstance(obj, Iterable) or isinstance(obj, str | bytes):
        raise ConfigurationError(
            f"{ref!r} is a {type(obj).__name__}; expected a list of tool "
            "contracts or a ToolRegistry"
        )
    tools = list(obj)
    bad = [t for t in tools if not isinstance(t, ToolContract)]
    if bad:
        raise ConfigurationError(
            f"{ref!r} holds things that are not tool contracts (decorate "
            f"them with @tool): {bad[:3]!r}"
        )
    return tools


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tether.tools.mcp", description="Serve tether tool contracts over MCP."
    )
    parser.add_argument("--app", required=True, help="module:attr or file.py:attr")
    parser.add_argument("--name", default="tether", help="the server name clients see")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default="/mcp", help="HTTP path of the MCP endpoint")
    parser.add_argument("--log-level", default="warning")
    ns = parser.parse_args(argv)
    # stdout is the wire on stdio: logs go to stderr
    logging.basicConfig(level=ns.log_level.upper(), stream=sys.stderr)
    try:
        tools = load_tools(ns.app)
        from tether.tools.mcp.server import run_http, run_stdio

        if ns.transport == "stdio":
            run_stdio(tools, name=ns.name)
        else:
            names = ", ".join(t.name for t in tools) or "none"
            print(  # stderr: one line saying where to point a client, as `tether serve` does
                f"tether MCP server {ns.name!r}: {len(tools)} tool(s) ({names}) at "
                f"http://{ns.host}:{ns.port}{ns.path} (streamable HTTP); Ctrl-C stops it",
                file=sys.stderr,
                flush=True,
            )
            run_http(tools, ns.host, ns.port, name=ns.name, path=ns.path, log_level=ns.log_level)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
