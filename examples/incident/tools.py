"""The assistant's tools: three read-only diagnostics that run in tether's sandbox, and one
write tool, the remediation.

Each diagnostic is fixed code run in a fresh sandboxed process (no network, a private read-only
view of the filesystem, CPU and memory limits) over *copies* of the host's files; the model
chooses which diagnostic runs and its arguments (arrive on stdin as JSON), never the code. They
are declared ``scope="read"``, so the policy lets them run without anyone's approval. The
remediation is ``scope="write"``: the policy escalates every write to the on-call lead, and
the service manager deduplicates it by an idempotency key derived from incident and service.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from tether.memory import MemoryPlane
from tether.store.protocol import RunStore
from tether.tools import ToolContract, ToolExecutor, tool
from tether.tools.sandbox import Sandbox, SandboxLimits

from .world import Host

Service = Annotated[str, Field(min_length=1, max_length=32, description="a service name")]

DIAGNOSTICS = ("search_log", "service_status", "disk_usage")
"""The read-only diagnostics a plan may use, in the order the scripted planner runs them."""
REMEDIATION = "restart_service"

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=20, memory_bytes=256 * 1024 * 1024)

SEARCH_LOG = """
import json, re, sys
a = json.load(sys.stdin)
pattern = re.compile(a["pattern"], re.IGNORECASE)
with open("log/" + a["service"] + ".log", encoding="utf-8") as fh:
    hits = [line.rstrip("\\n") for line in fh if pattern.search(line)]
print(json.dumps({"matches": len(hits), "lines": hits[-a["limit"]:]}))
"""

SERVICE_STATUS = """
import json, sys
a = json.load(sys.stdin)
with open("services.json", encoding="utf-8") as fh:
    status = json.load(fh)
if a["service"] not in status:
    sys.exit("no service " + repr(a["service"]) + "; known: " + ", ".join(sorted(status)))
print(json.dumps({"service": a["service"], **status[a["service"]]}))
"""

DISK_USAGE = """
import json
with open("df.txt", encoding="utf-8") as fh:
    rows = [line.split() for line in fh.read().splitlines()[1:] if line.strip()]
print(json.dumps({"mounts": [{"mount": r[5], "use": r[4], "size": r[1]} for r in rows]}))
"""


def as_text(tool_name: str, result: dict[str, Any]) -> str:
    """A diagnostic's result as the plain text the model reads and the validator checks."""
    if tool_name == "search_log":
        lines = "".join(f"\n    {line}" for line in result["lines"])
        return f"{result['matches']} matching line(s), the last {len(result['lines'])}:{lines}"
    if tool_name == "disk_usage":
        return "; ".join(f"{m['mount']} {m['use']} used of {m['size']}" for m in result["mounts"])
    return ", ".join(f"{k} {v}" for k, v in result.items())


async def sandboxed(box: Sandbox, host: Host, code: str, args: dict[str, Any]) -> Any:
    """Run one diagnostic's fixed ``code`` over a copy of the host's files."""
    result = await box.run(code, limits=LIMITS, files=host.files(), stdin=json.dumps(args))
    if not result.ok:
        why = result.killed_reason or (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise ValueError(f"the diagnostic failed in the sandbox: {why}")
    return json.loads(result.stdout)


def make_tools(host: Host, box: Sandbox, plane: MemoryPlane, runs: RunStore) -> ToolExecutor:
    async def search_log(
        service: Service,
        pattern: Annotated[str, Field(min_length=1, max_length=200)],
        limit: Annotated[int, Field(ge=1, le=20)] = 5,
    ) -> dict[str, Any]:
        """Lines of a service's log that match a regular expression (the last ``limit``)."""
        args = {"service": service, "pattern": pattern, "limit": limit}
        return dict(await sandboxed(box, host, SEARCH_LOG, args))

    async def service_status(service: Service) -> dict[str, Any]:
        """The service manager's view of a service: state, uptime, memory, db pool, restarts."""
        return dict(await sandboxed(box, host, SERVICE_STATUS, {"service": service}))

    async def disk_usage() -> dict[str, Any]:
        """Disk usage of the host's mounts (like ``df -h``)."""
        return dict(await sandboxed(box, host, DISK_USAGE, {}))

    def restart_service(service: Service, incident: str, idempotency_key: str) -> dict[str, Any]:
        """Restart a service (once per incident: the service manager deduplicates by key)."""
        return host.restart(service, incident, idempotency_key=idempotency_key)

    contracts: list[ToolContract] = [
        tool(search_log, scope="read"),
        tool(service_status, scope="read"),
        tool(disk_usage, scope="read"),
        tool(
            restart_service,
            scope="write",
            idempotent=True,
            idempotency_key=lambda a: f"restart:{a['incident']}:{a['service']}",
        ),
    ]
    return ToolExecutor([*contracts, *plane.tools(runs=runs)])
