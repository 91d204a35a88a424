"""MCP (Model Context Protocol) both ways, on the official ``mcp`` SDK (``tether[mcp]``).

- :class:`McpToolset` imports an MCP server's tools (stdio subprocess or streamable HTTP) as
  ToolContracts: arguments validated against the tool's JSON Schema, scope and idempotency from
  its annotations, MCP failures as typed ToolErrors.
- :func:`serve_tools` and friends expose ToolContracts as an MCP server (stdio or streamable
  HTTP); ``python -m tether.tools.mcp --app module:tools`` serves a list or registry over stdio.
"""

try:
    import mcp as _mcp  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess by the tests
    if (_exc.name or "").split(".")[0] in ("mcp", "mcp_types"):
        from tether.core.errors import missing_dependency

        raise missing_dependency("mcp", "mcp") from _exc
    raise

from tether.tools.mcp.client import (
    META_ERROR,
    META_IDEMPOTENCY_KEY,
    McpListingError,
    McpSessionClosedError,
    McpToolContract,
    McpToolError,
    McpToolset,
    is_idempotent,
    result_value,
    scope_of,
)
from tether.tools.mcp.server import (
    call_contract,
    http_app,
    run_http,
    run_stdio,
    serve_http,
    serve_stdio,
    serve_tools,
    tool_definition,
)

__all__ = [
    "META_ERROR",
    "META_IDEMPOTENCY_KEY",
    "McpListingError",
    "McpSessionClosedError",
    "McpToolContract",
    "McpToolError",
    "McpToolset",
    "call_contract",
    "http_app",
    "is_idempotent",
    "result_value",
    "run_http",
    "run_stdio",
    "scope_of",
    "serve_http",
    "serve_stdio",
    "serve_tools",
    "tool_definition",
]
