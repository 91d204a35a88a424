"""Open streams answer to the key that opened them: a revoked key's Server-Sent Events streams
end within ``RECHECK`` seconds, as its new requests are refused within the verifier's cache time.

A stream is authorised once, when it opens; without this a dashboard tab (or whoever holds a
leaked key) kept receiving the tenant's runs and events for as long as the connection stayed
up, revocation or not. ``while_authorised`` looks at the key again between the frames the
stream sends (at least one per heartbeat), and ends the stream with an ``event: revoked`` frame
once the key is revoked or gone. A browser's ``EventSource`` then reconnects and gets the 401.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from tether.server.keys import Principal
from tether.server.sse import frame
from tether.store.api_keys import ApiKeyStore
from tether.store.transient import unavailable

T = TypeVar("T")

RECHECK = 30.0
"""Seconds between two looks at the key of an open stream (the key cache's time as well)."""

REVOKED_DETAIL = (
    "the API key of this stream was revoked (or deleted); reconnect with a valid key "
    "(`tether keys create`)"
)


def key_alive(store: ApiKeyStore, who: Principal) -> Callable[[], Awaitable[bool]]:
    """Whether ``who``'s key is still live now (always, in local mode: no key)."""

    async def alive() -> bool:
        if who.key_id is None:
            return True
        try:
            rec = await store.get_api_key(who.key_id)
        except Exception as exc:
            if not unavailable(exc):
                raise
            return True  # the store cannot say now (a restart): looked at again next time
        return rec is not None and rec.revoked_at is None

    return alive


REVOKED_FRAME = frame({"status": 401, "detail": REVOKED_DETAIL}, event="revoked")
"""The last frame of a tether event stream whose key was revoked."""


async def while_authorised(
    body: AsyncIterator[T],
    alive: Callable[[], Awaitable[bool]],
    *,
    ending: T,
    every: float = RECHECK,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[T, None]:
    """``body``'s frames while ``alive()`` holds, asked at most every ``every`` seconds
    (between frames; ``every=0``: before each frame); then ``ending`` (``REVOKED_FRAME`` for
    tether's streams), and the stream ends."""
    next_look = clock() + every
    try:
        async for chunk in body:
            if clock() >= next_look:
                if not await alive():
                    yield ending
                    return
                next_look = clock() + every
            yield chunk
    finally:
        close = getattr(body, "aclose", None)
        if close is not None:
            await close()
