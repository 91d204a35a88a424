"""The client's HTTP layer: one ``httpx.AsyncClient``, the API key, problem JSON mapped to
tether errors, and retries with jittered backoff.

What is retried: a connection that could not be made (nothing was sent) on every call; on
calls that are safe to repeat (reads, and a submit, which always carries an idempotency key)
also a dropped connection, a read timeout, 502/503/504 and 429 (its ``Retry-After`` obeyed).
An answer that is not problem JSON (a proxy's HTML page) is read as no tether problem, and a
redirect is not followed (a ``ConfigurationError`` names where it points).
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from tether.client.errors import (
    NotFoundError,
    ServerError,
    ServerUnavailableError,
    error_from_problem,
)
from tether.core import serde
from tether.core.backoff import Backoff
from tether.core.errors import ConfigurationError, InvalidInputError, TetherError
from tether.core.finite import check_number
from tether.core.retry_after import retry_after_seconds

__all__ = ["DEFAULT_RETRY", "GATEWAY", "Http", "segment", "unreachable"]

DEFAULT_RETRY = Backoff(
    max_attempts=5, initial_interval=0.1, max_interval=2.0, max_retry_after=30.0, owner="Client"
)
STREAM_IDLE = 60.0
"""Seconds an event stream may stay silent (not even a heartbeat) before it is reopened."""
GATEWAY = frozenset({502, 503, 504})
"""What a proxy or load balancer in front of the server answers while the server behind it
is down (a restart, a deploy): the server is out of reach, as when nothing answers."""
_RETRY_STATUS = frozenset({429, *GATEWAY})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def check_url(url: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            "the server URL is empty; pass e.g. Client('http://127.0.0.1:8000')"
        )
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"server URL {url!r} must start with http:// or https://, e.g. http://127.0.0.1:8000"
        )
    return url


def _wrong_base(url: str) -> str | None:
    """The server root when ``url`` names the API below it (``http://host/v1``, or a proxy's
    ``http://host/tether/v1``): every path the client asks starts with ``/v1`` already."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not (path == "/v1" or path.endswith("/v1")):
        return None
    return urlunsplit(parts._replace(path=path[: -len("/v1")], query="", fragment=""))


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the server is out of reach: no answer at all, or a gateway in
    front of it answering for it (``GATEWAY``)."""
    if isinstance(exc, ServerUnavailableError):
        return True
    return isinstance(exc, ServerError) and exc.status in GATEWAY


def segment(value: str, what: str) -> str:
    """``value`` (a run or approval id) as one URL path segment: every reserved character
    escaped, and ``.``/``..`` spelled ``%2E`` (a literal dot segment is taken out of the
    path by the URL rules: ``/v1/runs/.`` would ask ``/v1/runs``, the runs list). An id
    with a ``/`` cannot be one segment: the server has no run of that name to find."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}")
    if "/" in value:
        raise InvalidInputError(
            f"{what} {value!r} has a '/', which no id the server serves has; "
            "pass the id as `tether runs list` shows it"
        )
    if value.strip(".") == "":
        return "%2E" * len(value)
    return quote(value, safe="")


def check_key(api_key: str) -> str:
    """The API key as it goes in a header: visible ASCII once the whitespace around it (a line
    break read from a file) is taken off; a character a header cannot carry is refused, named
    by its position (the key itself is a secret and is not echoed)."""
    if not isinstance(api_key, str):
        raise ConfigurationError(f"the API key must be a str, got {type(api_key).__name__}")
    key = api_key.strip()
    for i, ch in enumerate(key):
        if not "!" <= ch <= "~":
            raise ConfigurationError(
                f"the API key has {ch!r} at position {i}, which no tether key has (tk_...: "
                "visible ASCII, no spaces); copy it again from `tether keys create`"
            )
    return key


class Http:
    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: Backoff = DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = check_url(url)
        timeout = check_number("timeout (seconds)", timeout, above=True)
        headers = {"accept": "application/json", "user-agent": "tether-client"}
        key = check_key(api_key) if api_key is not None else ""
        if key:
            headers["authorization"] = f"Bearer {key}"
        self.retry = retry
        self.answered = False
        """Whether the server has answered this client (with anything below 500) once: a
        later failure to reach it is an outage, not a wrong URL."""
        self._make = functools.partial(
            httpx.AsyncClient,
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )
        self.client = self._make()
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop the pooled connections of ``client`` belong to (None: none yet)."""
        self._closed = False
        self.wrong_base = _wrong_base(self.url)

    def _client(self) -> httpx.AsyncClient:
        """The httpx client for the running event loop. Pooled connections belong to the loop
        that opened them: a client used again under another loop (a second ``asyncio.run``)
        gets a fresh pool there instead of httpx's 'Event loop is closed' from the old one.
        The old pool's connections, on a loop that is gone, are dropped unclosed."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            self.client = self._make()
            self._loop = loop
        return self.client

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop is loop:
            await self.client.aclose()
        # else: its connections belong to another loop (closed, or running elsewhere): they
        # cannot be closed from this one, and go when that loop does

    def check_open(self) -> None:
        if self._closed or self.client.is_closed:
            raise ConfigurationError(f"this client of {self.url} is closed; open a new one")

    def not_found(self, exc: TetherError) -> TetherError:
        """``exc`` with a note when the base URL looks wrong: a route-less 404 from a base URL
        that ends with ``/v1`` (the client adds ``/v1`` itself: the server root is wanted)."""
        if self.wrong_base is None or not isinstance(exc, NotFoundError):
            return exc
        kind = str(exc.problem.get("type") or "")
        if kind and not kind.endswith(("/not-found", "not-a-tether-problem")):
            return exc  # a thing not found (a workflow) on a route that exists
        note = (
            f"; the client's base URL {self.url} looks wrong: it ends with /v1, and the "
            f"client adds /v1 to each path itself: use the server root, {self.wrong_base}"
        )
        return NotFoundError(f"{exc}{note}", problem=exc.problem)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        safe: bool | None = None,
    ) -> Any:
        """One request's JSON answer; a refusal raises its tether error. ``safe`` (default:
        GET) says the call may be repeated after it may have reached the server."""
        self.check_open()
        safe = method == "GET" if safe is None else safe
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        content = encode_body(body, method, path) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._client().request(
                    method, path, content=content, headers=headers, params=clean or None
                )
            except httpx.TransportError as exc:
                retryable = safe or isinstance(exc, _NOT_SENT)
                if not retryable or attempt >= self.retry.max_attempts:
                    raise ServerUnavailableError(
                        f"no answer from {self.url} ({method} {path}): "
                        f"{type(exc).__name__}: {exc or 'connection failed'}"
                        + (f" after {attempt} attempts" if attempt > 1 else "")
                    ) from exc
                await asyncio.sleep(self.retry.backoff(attempt))
                continue
            if resp.status_code < 500:
                self.answered = True
            if resp.status_code in _RETRY_STATUS and safe and attempt < self.retry.max_attempts:
                after = retry_after_seconds(resp.headers.get("retry-after"))
                if not self.retry.retry_after_too_long(after):
                    await asyncio.sleep(after if after is not None else self.retry.backoff(attempt))
                    continue
            try:
                return decode(resp, method, path)
            except NotFoundError as exc:
                raise self.not_found(exc) from None

    @asynccontextmanager
    async def stream(
        self, path: str, *, headers: Mapping[str, str], params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A streamed GET; a refusal raises its tether error before anything is yielded. The
        read timeout is ``STREAM_IDLE`` (the server sends a heartbeat every 15 s), so a dead
        connection that never closed is noticed and reopened instead of waited on forever."""
        self.check_open()
        client = self._client()
        timeout = httpx.Timeout(client.timeout.connect, read=STREAM_IDLE)
        try:
            async with client.stream(
                "GET", path, headers=dict(headers), params=params, timeout=timeout
            ) as resp:
                if resp.status_code < 500:
                    self.answered = True
                if resp.status_code >= 400:
                    await resp.aread()
                    try:
                        decode(resp, "GET", path)
                    except NotFoundError as exc:
                        raise self.not_found(exc) from None
                yield resp
        except httpx.TransportError as exc:
            raise ServerUnavailableError(
                f"the stream {path} from {self.url} broke: {type(exc).__name__}: {exc}"
            ) from exc


def encode_body(body: Mapping[str, Any], method: str, path: str) -> bytes:
    """``body`` as the JSON bytes sent; what JSON cannot carry (NaN, a set, a Decimal, bytes...)
    is the ``InvalidInputError`` a Runtime raises for it, naming where it sits, before
    anything is sent (not httpx's ``ValueError`` or ``TypeError``)."""
    bad = serde.unstorable(body) or _not_json(body, "")
    if bad is None:
        try:
            return json.dumps(
                body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
        except (TypeError, ValueError) as exc:
            bad = "", str(exc)
    where, what = bad
    raise InvalidInputError(
        f"{method} {path}: the request body holds {what}"
        + (f" at body{where}" if where else "")
        + "; JSON cannot carry it: send null or a finite number, text, a list or an object"
    )


def _not_json(value: Any, where: str) -> tuple[str, str] | None:
    """Where ``value`` holds what ``json.dumps`` refuses (a set, bytes, an object), and what;
    None when it holds none (``serde.unstorable`` has found the rest: NaN, a Decimal...)."""
    if value is None or isinstance(value, str | int | float):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key is None or isinstance(key, str | int | float)):
                return f"{where}[{key!r}]", f"a key of type {type(key).__name__}"
            found = _not_json(item, f"{where}[{key!r}]")
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _not_json(item, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    return where, f"a value of type {type(value).__name__}"


def decode(resp: httpx.Response, method: str, path: str) -> Any:
    """The JSON of a success, or raise the error a refusal means."""
    if resp.status_code >= 400:
        try:
            problem = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            problem = None
        if not isinstance(problem, dict):
            problem = not_a_problem(resp)
        after = retry_after_seconds(resp.headers.get("retry-after"))
        raise error_from_problem(
            resp.status_code, problem, method=method, path=path, retry_after=after
        )
    if 300 <= resp.status_code < 400:
        where = resp.headers.get("location") or "elsewhere"
        raise ConfigurationError(
            f"{method} {path} was redirected ({resp.status_code}) to {where}; the client "
            "follows no redirect: pass the server URL it points at (https://...?)"
        )
    if not resp.content:
        return None
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ServerError(
            f"{method} {path} answered {resp.status_code} with a body that is not JSON: "
            f"{resp.text[:200]!r}; is {resp.url.host}:{resp.url.port} a tether server?",
            status=resp.status_code,
        ) from None


_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]*>", re.S | re.I)


def not_a_problem(resp: httpx.Response) -> dict[str, Any]:
    """A refusal that is not tether's problem JSON (an HTML page of a proxy, a load balancer,
    another server): its text, tags taken out, and where it came from. Its ``type`` says it
    is no tether problem, so a 404 is not read as "no such run" (the run may well exist
    behind a proxy whose path is wrong)."""
    ctype = resp.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    text = " ".join(html.unescape(_TAG.sub(" ", resp.text[:20_000])).split())[:200]
    return {
        "type": "not-a-tether-problem",
        "detail": f"{text or resp.reason_phrase} (answered {ctype}, not tether's problem "
        f"JSON: a proxy in front of the server, or no tether server at "
        f"{resp.url.scheme}://{resp.url.netloc.decode()}?)",
    }
