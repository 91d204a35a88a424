"""``tether.client``: a Python client (sync and async, httpx) for a ``tether serve`` server."""
