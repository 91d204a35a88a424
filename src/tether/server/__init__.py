"""``tether serve``: the HTTP API, Server-Sent Events, tenants and API keys, the dashboard, A2A.

``create_app(ServerSettings(store=..., workflows=[...]))`` builds the FastAPI app (see
``tether.server.app``); ``tether serve`` runs it with uvicorn. API keys: ``create_key`` (or
``tether keys create``); each request acts as a ``Principal`` (tenant and scopes).
"""

from tether.server.app import create_app
from tether.server.keys import SCOPES, KeyVerifier, Principal, create_key
from tether.server.services import Services
from tether.server.settings import ServerSettings

__all__ = [
    "SCOPES",
    "KeyVerifier",
    "Principal",
    "ServerSettings",
    "Services",
    "create_app",
    "create_key",
]
