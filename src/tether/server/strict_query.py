"""Unknown query parameters are a 422, not silently ignored: ``?stauts=FAILED`` (a typo) would
otherwise list every run as if it were the answer. So is a parameter given twice that takes one
value (``?workflow=a&workflow=b`` would quietly mean ``b``)."""

import types
import typing
from collections.abc import Sequence
from typing import Any

from fastapi import Request

from tether.server.problems import ApiProblem

_NAMES = "_tether_query_names"
"""The route attribute holding its query parameters, computed once. Kept on the route itself,
not in a table by ``id(route)``: a process that builds several apps (tests, reloads) frees
routes, and a new route at a freed address would otherwise inherit another route's."""


def _known(route: object) -> dict[str, bool] | None:
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    names: dict[str, bool] | None = getattr(route, _NAMES, None)
    if names is None:
        names = _query_names(dependant)
        setattr(route, _NAMES, names)
    return names


def _query_names(dependant: Any) -> dict[str, bool]:
    """The query parameters a route and its dependencies declare: name -> takes several."""
    out = {p.alias: _repeatable(p.field_info.annotation) for p in dependant.query_params}
    for sub in dependant.dependencies:
        out.update(_query_names(sub))
    return out


def _repeatable(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_repeatable(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _repeatable(typing.get_args(annotation)[0])
    return isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str


async def known_query(request: Request) -> None:
    """A dependency: every query parameter must be one the route declares."""
    names = _known(request.scope.get("route"))
    if names is None:
        return
    nul = sorted({k for k, v in request.query_params.multi_items() if "\x00" in v})
    if nul:  # no id, name or filter holds one (PostgreSQL's text cannot: a 500 otherwise)
        raise ApiProblem(
            422,
            f"query parameter {nul[0][:40]!r} holds a NUL character (%00); no id, name or "
            "filter holds one",
            kind="validation",
        )
    unknown = sorted({k for k in request.query_params if k not in names})
    if unknown:
        takes = ", ".join(sorted(names)) or "none"
        raise ApiProblem(
            422,
            f"unknown query parameter(s) {', '.join(repr(u[:40]) for u in unknown[:5])}; "
            f"this route takes: {takes}",
            kind="unknown-query-parameter",
        )
    twice = sorted(k for k, n in _counts(request).items() if n > 1 and not names[k])
    if twice:
        raise ApiProblem(
            422,
            f"query parameter(s) {', '.join(repr(t[:40]) for t in twice[:5])} given more than "
            "once; each takes one value",
            kind="repeated-query-parameter",
        )


def _counts(request: Request) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        counts[key] = counts.get(key, 0) + 1
    return counts
