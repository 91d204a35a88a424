"""``Services``: what the routes (and ``mount_a2a``) are given: the runtime, the registered
workflows, and authentication.

``services.runtime`` is a ``tether.graph.runtime.Runtime`` on the server's store (it submits,
resumes, cancels and forks; it executes runs only when the server embeds a worker);
``services.workflows`` maps names to the registered compiled workflows;
``services.require(scope)`` is a FastAPI dependency returning the caller's ``Principal``
(``tenant``, ``scopes``, ``actor``) or answering 401/403 problem JSON. Every read of a run
must go through ``services.run_of(run_id, principal)`` (or filter by ``principal.tenant``):
another tenant's run reads as not found.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.graph.builder import Workflow
from tether.graph.runtime import Runtime
from tether.server.auth import Auth
from tether.server.keys import Principal
from tether.server.metrics import RunMetrics
from tether.server.problems import ApiProblem
from tether.server.settings import ServerSettings
from tether.store.tenancy import tenant_run
from tether.store.types import RunRecord


@dataclass(slots=True)
class Services:
    runtime: Runtime
    auth: Auth
    settings: ServerSettings
    workflows: Mapping[str, Workflow] = field(default_factory=dict)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    extras: dict[str, Any] = field(default_factory=dict)
    """Room for what mounted parts (dashboard, A2A) want to share."""

    def require(self, scope: str) -> Callable[..., Awaitable[Principal]]:
        return self.auth.require(scope)

    def workflow(self, name: str) -> Workflow:
        wf = self.workflows.get(name)
        if wf is None:
            known = ", ".join(sorted(self.workflows)) or "none (start the server with --app)"
            raise ApiProblem(
                422,
                f"unknown workflow {name!r}; this server runs: {known}",
                kind="unknown-workflow",
            )
        return wf

    async def run_of(self, run_id: str, who: Principal) -> RunRecord:
        """The run, if ``who`` may see it (else RunNotFoundError, answered 404)."""
        return await tenant_run(self.runtime.store, run_id, who.tenant)
