"""``tether serve``: the HTTP API, Server-Sent Events, tenants and API keys, the dashboard, A2A."""
