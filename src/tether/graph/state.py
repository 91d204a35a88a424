"""State schema: fields, their types and reducers; validation and application of updates."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from math import isfinite
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from tether.core import serde
from tether.core.errors import InvalidInputError, InvalidUpdateError, UnstorableValueError
from tether.core.ids import MAX_ID, is_run_id
from tether.core.reducers import BUILTIN, replace
from tether.graph.state_fields import MISSING, Field, Kind, read_fields, type_text

__all__ = ["Field", "StateSchema", "reducers_from_names"]


_SCALARS = (int, float, str, bool, type(None))


def _flat(values: dict[str, Any]) -> bool:
    """Whether every value is an immutable scalar: nothing a deep copy would copy (a run's
    input is usually such a dict; ``copy.deepcopy`` of it costs several microseconds)."""
    return all(type(v) in _SCALARS for v in values.values())


class StateSchema:
    """Reads a state class into fields with reducers, and checks input and updates against it.

    ``Annotated[list[str], append]`` gives a field a reducer; a plain annotation replaces. The
    state class may be a TypedDict, a dataclass, a pydantic model or a plain annotated class
    (see ``state_fields`` for what each kind says about defaults and required fields).
    """

    def __init__(self, schema: type[Any] | None) -> None:
        self.schema = schema
        self.fields: dict[str, Field] = {}
        self.kind: Kind | None = None
        self._stored: dict[str, TypeAdapter[Any]] = {}
        if schema is None:
            return
        self.kind, self.fields = read_fields(schema)

    def describe(self) -> list[list[str]]:
        """The schema's structure (field, type, reducer), stable across processes."""
        return [[n, type_text(f.type), f.reducer.name] for n, f in sorted(self.fields.items())]

    @property
    def reducer_names(self) -> dict[str, str]:
        return {n: f.reducer.name for n, f in self.fields.items() if f.reducer is not replace}

    def initial_state(self, data: Mapping[str, Any] | None) -> dict[str, Any]:
        """The state a run starts from: the fields' initial values (fresh copies), then the
        input. Raises InvalidInputError (before anything is stored) for input that does not fit:
        unknown or wrongly typed fields, NaN/infinity, or a required field left out."""
        if data is not None and not isinstance(data, Mapping):
            raise InvalidInputError(
                f"run input must be a mapping of state fields, got {type(data).__name__}"
            )
        given = dict(data or {})
        try:  # also without a schema: what the store cannot hold is refused before it is copied
            self.check_update(
                given,
                "",
                replace_all=True,
                source="run input",
                check_types=self.kind != "pydantic",
            )
        except InvalidUpdateError as exc:
            raise InvalidInputError(str(exc)) from None
        if self.schema is not None:
            missing = [n for n, f in self.fields.items() if f.required and n not in given]
            if missing:
                raise InvalidInputError(
                    f"run input is missing required state field(s) {missing} of "
                    f"{self.schema.__name__}; pass them in the input (they have no default), "
                    "or give them a default in the state class"
                )
            if self.kind == "pydantic":
                return self._validated(given)
        state: dict[str, Any] = {}
        for f in self.fields.values():
            if f.name in given:
                continue
            v = f.initial()
            if v is not MISSING:
                state[f.name] = v
        state.update(given if _flat(given) else copy.deepcopy(given))
        return state

    def _validated(self, given: dict[str, Any]) -> dict[str, Any]:
        """A pydantic state: the model fills defaults and runs its validators on the input."""
        assert self.schema is not None
        try:
            model = self.schema.model_validate(given)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or self.schema.__name__
            raise InvalidInputError(
                f"run input does not fit {self.schema.__name__}: {where}: {first['msg']}"
            ) from None
        state: dict[str, Any] = model.model_dump()
        return {k: v for k, v in state.items() if k in self.fields}

    def check_update(
        self,
        update: Any,
        node: str,
        *,
        replace_all: bool = False,
        source: str | None = None,
        check_types: bool = True,
    ) -> dict[str, Any]:
        """Validate a node's partial update (keys exist, values fit their types, numbers are
        finite).

        ``source`` names who wrote it when it is not a node ("run input", "fork patch").
        """
        if not isinstance(update, dict):
            who = _who(source, node)
            what = f"{who} is a" if source else f"{who} returned a"
            awaitable = inspect.isawaitable(update)
            hint = " (an async function called without await?)" if awaitable else ""
            raise InvalidUpdateError(
                f"{what} {type(update).__name__}{hint}; a node must return a dict "
                "of state updates, a Command, or None"
            )
        fields = self.fields
        schema = self.schema
        for key, value in update.items():
            f = fields.get(key)
            if f is not None:
                tv = type(value)
                if tv is f.exact and (  # a plain value of exactly its field's type, storable
                    (tv is int and _MIN_INT <= value <= _MAX_INT)
                    or (tv is str and value.isascii())
                    or tv is bool
                    or (tv is float and isfinite(value))
                ):
                    continue  # what serde.unstorable and the type check below would pass
            elif schema is not None:
                who = _who(source, node)
                raise InvalidUpdateError(
                    f"{who} wrote unknown state key {key!r}; "
                    f"the state schema {schema.__name__} has {sorted(fields)}"
                )
            bad = serde.unstorable(value)
            if bad is not None:
                who = _who(source, node)
                raise InvalidUpdateError(
                    f"{who} wrote {key!r}={_short(value)}, which {_holds(key, bad)}; state is "
                    f"stored as JSON: {_advice(bad[1])}"
                )
            if f is None or not check_types or type(value) is f.exact:
                continue  # an exact int, str... fits its plain int, str... field as it is
            adapter = f.adapter
            if replace_all and f.reducer is not replace:
                adapter = TypeAdapter(f.type) if f.type is not Any else None
            if adapter is not None:
                try:
                    adapter.validate_python(value, strict=True)
                except PydanticValidationError as exc:
                    first = exc.errors()[0]
                    who = _who(source, node)
                    raise InvalidUpdateError(
                        f"{who} wrote {key!r}={_short(value)} which does not fit "
                        f"{_type_name(f.type)}: {first['msg']}"
                    ) from None
        return update

    def stored_value_problem(self, name: str, value: Any) -> str | None:
        """Why a stored value of field ``name`` does not fit the field's type as it is now
        (checked as the JSON it is kept as), or None when it fits."""
        f = self.fields.get(name)
        if f is None or f.type is Any or f.reducer.name.startswith("custom:") or value is None:
            return None
        initial = f.initial()
        if initial is not MISSING and value == initial:  # the class's own default
            return None
        adapter = self._stored.get(name)
        if adapter is None:
            adapter = self._stored[name] = TypeAdapter(f.type)
        try:
            adapter.validate_json(serde.dumps(value), strict=True)
        except PydanticValidationError as exc:
            why = exc.errors()[0]["msg"]
            return f"{_short(value)}, which does not fit {_type_name(f.type)}: {why}"
        return None

    def apply(self, state: dict[str, Any], writes: list[tuple[str, dict[str, Any]]]) -> None:
        """Apply ordered (task_id, update) writes to ``state`` in place, through the reducers.

        Two tasks writing the same replace-field in one step is a conflict, never a silent win.
        """
        fields = self.fields
        if len(writes) == 1:  # one task's update (most steps): no two writers of a field
            for key, value in writes[0][1].items():
                f = fields.get(key)
                if f is None or f.reducer is replace:
                    state[key] = value
                else:
                    state[key] = f.reducer.fn(state.get(key), value)
            return
        seen: dict[str, str] = {}
        for task, update in writes:
            for key, value in update.items():
                f = fields.get(key)
                reducer = f.reducer if f is not None else replace
                if reducer is replace:
                    if key in seen:
                        raise InvalidUpdateError(
                            f"tasks {seen[key]!r} and {task!r} both wrote {key!r} in the same "
                            "step; give the field a reducer (e.g. Annotated[list[str], append]) or "
                            "write it from one node only"
                        )
                    seen[key] = task
                    state[key] = value
                else:
                    state[key] = reducer.fn(state.get(key), value)


_MIN_INT, _MAX_INT = serde.MIN_INT, serde.MAX_INT


def _who(source: str | None, node: str) -> str:
    """Who wrote an update, for its error (made only when one is raised: it is checked at
    every step)."""
    return source or f"node {node!r}"


def reducers_from_names(names: Mapping[str, str]) -> StateSchema:
    """A schema-less view that can rebuild stored state with built-in reducers only."""
    view = StateSchema(None)
    for name, rname in names.items():
        if rname not in BUILTIN:
            continue
        view.fields[name] = Field(name, Any, BUILTIN[rname])
    return view


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_STORABLE = {
    serde.NONFINITE: "JSON has no such numbers, write None or a finite number instead",
    serde.SURROGATE: "decode bytes with errors='replace' (or keep them as base64), not "
    "'surrogateescape'",
    serde.HUGE_INT: "write it as a string, or as a float if precision may go",
    serde.NOT_UTF8: "keep binary data as base64 text (base64.b64encode(data).decode()), or "
    "store it elsewhere and keep a reference to it",
    serde.TOO_DEEP: "flatten it, or keep the deep part as a JSON string",
}
"""How to write what ``serde.unstorable`` found instead."""


def _advice(what: str) -> str:
    return _STORABLE.get(what) or (
        "make it a dict, list, str, number, bool or None (dataclasses and pydantic models are "
        "kept as their fields)"
    )


def check_storable(**named: Any) -> None:
    """Raise InvalidInputError for the first named argument holding what tether cannot store
    (``serde.unstorable``): a run id, key, thread, queue or metadata would otherwise fail at
    the write with the database driver's own error. Strings kept in a text column (ids, keys,
    names, reasons) are checked with ``check_text`` as well."""
    for name, value in named.items():
        bad = serde.unstorable(value)
        if bad is not None:
            raise InvalidInputError(
                f"{name}={_short(value)} {_holds(name, bad)}; it is stored as JSON or text: "
                f"{_advice(bad[1])}"
            )


def check_text(**named: Any) -> None:
    """``check_storable`` for the strings among ``named`` kept in a text column (ids, keys,
    names, reasons), which also refuses a NUL character: PostgreSQL's text cannot hold one
    (a JSON value can, escaped), so it is refused on every backend alike, named, instead of
    failing at the write with the driver's DataError."""
    check_storable(**named)
    for name, value in named.items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInputError(
                f"{name}={_short(value)} holds a NUL character (\\x00); it is stored as text, "
                "which cannot hold one: remove it"
            )


def check_run_id(name: str, value: Any) -> None:
    """A run id a caller chooses (``start(run_id=)``, ``fork(new_run_id=)``) is written as the
    ids tether makes: a 5,000-character id, or one with a space or a slash, was stored as is
    and no ``/v1/runs/{id}`` (the server, the client, ``--server``) could reach it."""
    if value is not None and not is_run_id(value):
        raise InvalidInputError(
            f"{name}={_short(value) if isinstance(value, str) else repr(value)} is no run id: "
            f"use 1-{MAX_ID} characters among letters, digits and '_', '.', ':', '@', '-', not "
            "only dots (one URL path segment, so the HTTP API reaches the run)"
        )


def check_max_steps(max_steps: Any) -> None:
    """Refuse a ``max_steps`` (of ``start``, ``resume``, ``fork``) that is not a whole number of
    steps >= 1: a negative grant lowered a run's step limit, a string was a TypeError."""
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise InvalidInputError(f"max_steps must be an int >= 1, got {max_steps!r}")


def check_kept(value: Any, name: str, who: str) -> None:
    """Raise UnstorableValueError when ``value``, which a node hands over to be kept (an
    interrupt payload, a ``Send`` argument, a journal key), holds what the store cannot
    hold (``serde.unstorable``): ``name`` says what it is, ``who`` who handed it over."""
    bad = serde.unstorable(value)
    if bad is not None:
        raise UnstorableValueError(
            f"{who}: {name}={_short(value)} {_holds(name, bad)}; it is stored as JSON: "
            f"{_advice(bad[1])}",
            where=name + bad[0],
        )


def _holds(name: str, bad: tuple[str, str]) -> str:
    where, what = bad
    return f"holds {what}" + (f" at {name}{where}" if where else "")


def _short(value: Any) -> str:
    try:
        r = repr(value)
    except RecursionError:  # nested deeper than repr goes: name the type only
        return f"<a {type(value).__name__} nested too deep to show>"
    return r if len(r) <= 60 else r[:57] + "..."
