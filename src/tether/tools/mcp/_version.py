"""tether's version, as the MCP client and server report it."""

from importlib.metadata import PackageNotFoundError, version

try:
    TETHER_VERSION = version("tether")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    TETHER_VERSION = "0.0.0"
