"""What makes two model calls "the same question" for the semantic cache, and what may never
be cached: the exact scope key, the state fingerprint, and the store rules (see ``cache``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tether.core import serde
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.llm.types import ModelRequest, ModelResponse


def fingerprint(state: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """A stable hash of ``state`` (or of its ``keys`` only) for ``state_fingerprint``: equal
    JSON-able values give equal fingerprints in any process; a key that is absent differs from
    one that is None."""
    if not isinstance(state, Mapping):
        raise InvalidInputError(
            f"fingerprint takes the state as a mapping (a dict), got {type(state).__name__}"
        )
    if isinstance(keys, str):
        raise ConfigurationError(f"keys must be a list of state keys, not the string {keys!r}")
    chosen = dict(state) if keys is None else {k: state[k] for k in keys if k in state}
    missing = [] if keys is None else sorted(k for k in keys if k not in state)
    try:
        return serde.fingerprint({"state": chosen, "missing": missing})
    except TypeError as exc:
        raise InvalidInputError(
            f"cannot fingerprint the state ({exc}); pass keys=[...] naming the JSON-able parts "
            "the answer depends on"
        ) from exc


def scope_of(
    model: str, request: ModelRequest, tenant: str | None = None
) -> tuple[str, str] | None:
    """(scope key, last user message) of a request; None when it has no user message. A
    tenant's requests have scopes of their own: no tenant is served another's answers."""
    turn = next(
        (i for i in range(len(request.messages) - 1, -1, -1) if request.messages[i].role == "user"),
        None,
    )
    if turn is None:
        return None
    data = request.model_dump(mode="json")
    data["messages"][turn]["content"] = None  # the question's place, not its wording
    scope: dict[str, Any] = {"model": model, "request": data}
    if tenant is not None:
        scope["tenant"] = tenant
    return serde.fingerprint(scope), request.messages[turn].content


def write_calls(request: ModelRequest, response: ModelResponse) -> list[str]:
    """Tools the response calls that may change the world (or that the request never offered)."""
    specs = {t.name: t for t in request.tools}
    return [c.name for c in response.tool_calls if c.name not in specs or specs[c.name].writes]


def refusal(request: ModelRequest, response: ModelResponse, allow_write_tools: bool) -> str | None:
    """Why ``response`` must not be cached, or None when it may be."""
    if response.finish_reason not in ("stop", "tool_calls"):
        return f"finish_reason {response.finish_reason!r}"
    if not response.text and not response.tool_calls:
        return "empty response"
    if any(c.raw_arguments is not None for c in response.tool_calls):
        return "malformed tool arguments"
    if not allow_write_tools and (writes := write_calls(request, response)):
        return f"calls write tools {writes}"
    if request.response_format is not None and not response.tool_calls:
        try:
            orjson.loads(response.text)
        except orjson.JSONDecodeError:
            return "text is not the JSON the response_format asks for"
    return None
