"""The query parameters a route takes are remembered per route object: a process that builds
several apps frees routes, and a new route at a freed address must not inherit the old one's
parameters (seen as "unknown query parameter 'workflow'; this route takes: none" on
``GET /v1/runs`` in a long test run)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Query

from tether.server.strict_query import _known


def _route(with_query: bool) -> Any:
    app = FastAPI()
    if with_query:

        @app.get("/x")
        def x(workflow: str | None = Query(default=None)) -> None:
            return None
    else:

        @app.get("/x")
        def y() -> None:
            return None

    return app.router.routes[-1]


def test_a_route_at_a_freed_address_gets_its_own_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tether.server.strict_query as strict_query

    # every route "at the same address", as a freed route's successor can be
    monkeypatch.setattr(strict_query, "id", lambda _obj: 42, raising=False)
    old = _route(with_query=False)
    assert _known(old) == {}
    new = _route(with_query=True)
    assert _known(new) == {"workflow": False}
    assert _known(old) == {}
