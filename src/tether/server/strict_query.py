"""Unknown query parameters are a 422, not silently ignored: ``?stauts=FAILED`` (a typo) would
otherwise list every run as if it were the answer."""

from typing import Any

from fastapi import Request

from tether.server.problems import ApiProblem

_KNOWN: dict[int, frozenset[str]] = {}


def _known(route: object) -> frozenset[str] | None:
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    names = _KNOWN.get(id(route))
    if names is None:
        names = _KNOWN[id(route)] = frozenset(_query_names(dependant))
    return names


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route and its dependencies declare."""
    out = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        out |= _query_names(sub)
    return out


async def known_query(request: Request) -> None:
    """A dependency: every query parameter must be one the route declares."""
    names = _known(request.scope.get("route"))
    if names is None:
        return
    unknown = sorted({k for k in request.query_params if k not in names})
    if unknown:
        takes = ", ".join(sorted(names)) or "none"
        raise ApiProblem(
            422,
            f"unknown query parameter(s) {', '.join(repr(u[:40]) for u in unknown[:5])}; "
            f"this route takes: {takes}",
            kind="unknown-query-parameter",
        )
