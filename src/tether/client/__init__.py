"""``tether.client``: a Python client (sync and async, httpx) for a ``tether serve`` server.

    from tether.client import Client

    with Client("http://127.0.0.1:8000", api_key="tk_...") as client:
        run = client.submit("triage", {"ticket": "T-1"})
        print(client.wait(run.run_id).status)

The methods mirror the Runtime's (submit, get, list, wait, events, resume, cancel, fork,
history, state, approvals, workflows), and a refusal raises the tether error the Runtime
raises for the same mistake (see :mod:`tether.client.errors`).
"""

from tether.client.async_client import AsyncClient
from tether.client.errors import (
    AuthError,
    NotFoundError,
    ServerBusyError,
    ServerError,
    ServerUnavailableError,
)
from tether.client.models import (
    Approval,
    Event,
    HistoryStep,
    Page,
    Run,
    RunUpgrade,
    StateAt,
    Transition,
    WorkflowInfo,
)
from tether.client.sync_client import Client

__all__ = [
    "Approval",
    "AsyncClient",
    "AuthError",
    "Client",
    "Event",
    "HistoryStep",
    "NotFoundError",
    "Page",
    "Run",
    "RunUpgrade",
    "ServerBusyError",
    "ServerError",
    "ServerUnavailableError",
    "StateAt",
    "Transition",
    "WorkflowInfo",
]
