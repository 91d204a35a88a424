"""Who a request is: ``Authorization: Bearer <key>`` checked against the store's API keys, or
the local single tenant when the store holds no key at all (local mode, bound to loopback).

``Auth.require(scope)`` is a FastAPI dependency that returns the request's ``Principal`` or
answers 401 (no key, or a key that is unknown, malformed or revoked) or 403 (the key lacks the
scope). Whether any key exists is looked up at most every ``KEYS_RECHECK`` seconds: a key
created while the server runs switches it out of local mode within that time.
"""

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tether.server.keys import LOCAL, SCOPES, KeyVerifier, Principal
from tether.server.problems import ApiProblem
from tether.store.api_keys import ApiKeyStore

KEYS_RECHECK = 2.0
_BEARER = HTTPBearer(auto_error=False, description="an API key: tether keys create")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tether"'}


class Auth:
    def __init__(
        self, store: ApiKeyStore, *, cache_ttl: float = 30.0, require_keys: bool = False
    ) -> None:
        self.store = store
        self.require_keys = require_keys
        self.verifier = KeyVerifier(store, cache_ttl=cache_ttl)
        self._keyed_until = 0.0
        self._keyed = False

    async def keyed(self) -> bool:
        """Whether the store holds any live key (else: local single-tenant mode)."""
        if self.require_keys:
            return True
        now = time.monotonic()
        if now >= self._keyed_until:
            self._keyed = await self.store.has_api_keys()
            self._keyed_until = now + KEYS_RECHECK
        return self._keyed

    async def principal(self, creds: HTTPAuthorizationCredentials | None) -> Principal:
        if creds is None:
            if await self.keyed():
                raise ApiProblem(
                    401,
                    "this server needs an API key: send `Authorization: Bearer <key>` (make "
                    "one with `tether keys create --tenant NAME --scopes read,submit`)",
                    kind="unauthorized",
                    headers=_CHALLENGE,
                )
            return LOCAL
        found = await self.verifier.verify(creds.credentials)
        if found is None:
            raise ApiProblem(
                401,
                "the API key is unknown, malformed or revoked; check the key, or make a new "
                "one with `tether keys create`",
                kind="unauthorized",
                headers=_CHALLENGE,
            )
        return found

    def require(self, scope: str) -> Callable[..., Awaitable[Principal]]:
        """A dependency: the request's principal, which must hold ``scope``."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")

        async def dependency(
            request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_BEARER)
        ) -> Principal:
            who = await self.principal(creds)
            if not who.allows(scope):
                raise ApiProblem(
                    403,
                    f"this API key lacks the {scope!r} scope (it has "
                    f"{', '.join(sorted(who.scopes))}); use a key made with --scopes {scope}",
                    kind="forbidden",
                )
            request.state.principal = who
            return who

        return dependency
