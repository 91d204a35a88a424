"""The bearer token a worker's probe endpoint may ask for (``tether worker --probe-token``,
env ``TETHER_PROBE_TOKEN``; ``Worker(probe_token=...)``).

With a token, ``/metrics`` answers only a request that sends ``Authorization: Bearer <token>``
(401 problem JSON otherwise), and ``/healthz`` / ``/readyz`` keep answering every caller (a
cluster's probes send no header) with their status alone: the worker's description (its id,
host, pid, queues and workflows) goes only to a caller with the token. A token is compared in
constant time. Without one the endpoint is open, as before: bind it to loopback or a
cluster-internal address.
"""

from __future__ import annotations

import hmac

from tether.core.errors import ConfigurationError

TOKEN_ENV = "TETHER_PROBE_TOKEN"
MIN_LENGTH = 16


def check_probe_token(token: str | None) -> None:
    """Raise ConfigurationError for a token that is not one (None is: no token)."""
    if token is None:
        return
    if len(token) < MIN_LENGTH or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigurationError(
            f"the probe token must be at least {MIN_LENGTH} printable characters without spaces "
            f"(got {len(token)} characters); make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def presented(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as a bearer token."""
    if not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())
