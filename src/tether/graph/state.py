"""State schema: fields, their types and reducers; validation and application of updates."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from tether.core.errors import GraphDefinitionError, InvalidInputError, InvalidUpdateError
from tether.core.reducers import BUILTIN, Reducer, as_reducer, replace

_MISSING = object()


@dataclass(slots=True)
class Field:
    name: str
    type: Any
    reducer: Reducer
    default: Any = _MISSING
    adapter: TypeAdapter[Any] | None = None

    def initial(self) -> Any:
        if self.default is not _MISSING:
            return self.default() if callable(self.default) else self.default
        if self.reducer.empty is not None:
            return self.reducer.empty()
        if self.reducer.name == "add" and self.type in (int, float):
            return self.type()  # a counter starts at zero
        return _MISSING


def _update_type(tp: Any, reducer: Reducer) -> Any:
    """The type a node may write to a field with this reducer."""
    if reducer.name in ("append", "union"):
        args = get_args(tp)
        elem = args[0] if args else Any
        return list[elem] | elem  # type: ignore[valid-type]
    if reducer.name.startswith("custom:"):
        return None
    return tp


class StateSchema:
    """Reads a TypedDict (or any annotated class) into fields with reducers.

    ``Annotated[list[str], append]`` gives a field a reducer; a plain annotation replaces.
    Plain classes may give defaults as class attributes.
    """

    def __init__(self, schema: type[Any] | None) -> None:
        self.schema = schema
        self.fields: dict[str, Field] = {}
        if schema is None:
            return
        try:
            hints = get_type_hints(schema, include_extras=True)
        except Exception as exc:
            raise GraphDefinitionError(f"cannot read the state schema {schema!r}: {exc}") from exc
        if not hints:
            raise GraphDefinitionError(
                f"state schema {schema.__name__} has no annotated fields; declare them like "
                "`class State(TypedDict): count: int`"
            )
        for name, hint in hints.items():
            tp, reducer = hint, replace
            if get_origin(hint) is typing.Annotated:
                tp, *meta = get_args(hint)
                for m in meta:
                    if isinstance(m, Reducer | str) or callable(m):
                        try:
                            reducer = as_reducer(m)
                        except (ValueError, TypeError) as exc:
                            raise GraphDefinitionError(f"field {name!r}: {exc}") from exc
                        break
            default = getattr(schema, name, _MISSING) if not _is_typeddict(schema) else _MISSING
            utype = _update_type(tp, reducer)
            adapter = TypeAdapter(utype) if utype is not None and utype is not Any else None
            self.fields[name] = Field(name, tp, reducer, default, adapter)

    @property
    def reducer_names(self) -> dict[str, str]:
        return {n: f.reducer.name for n, f in self.fields.items() if f.reducer is not replace}

    def initial_state(self, data: Mapping[str, Any] | None) -> dict[str, Any]:
        if data is not None and not isinstance(data, Mapping):
            raise InvalidInputError(
                f"run input must be a mapping of state fields, got {type(data).__name__}"
            )
        state: dict[str, Any] = {}
        for f in self.fields.values():
            v = f.initial()
            if v is not _MISSING:
                state[f.name] = v
        if data:
            try:
                self.check_update(dict(data), "", replace_all=True, source="run input")
            except InvalidUpdateError as exc:
                raise InvalidInputError(str(exc)) from None
            state.update(data)
        return state

    def check_update(
        self, update: Any, node: str, *, replace_all: bool = False, source: str | None = None
    ) -> dict[str, Any]:
        """Validate a node's partial update (keys exist, values fit their types).

        ``source`` names who wrote it when it is not a node ("run input", "fork patch").
        """
        who = source or f"node {node!r}"
        if not isinstance(update, dict):
            raise InvalidUpdateError(
                f"{who} is a {type(update).__name__}; a node must return a dict "
                "of state updates, a Command, or None"
            )
        if self.schema is None:
            return update
        fields = self.fields
        for key, value in update.items():
            f = fields.get(key)
            if f is None:
                raise InvalidUpdateError(
                    f"{who} wrote unknown state key {key!r}; "
                    f"the state schema {self.schema.__name__} has {sorted(fields)}"
                )
            adapter = f.adapter
            if replace_all and f.reducer is not replace:
                adapter = TypeAdapter(f.type) if f.type is not Any else None
            if adapter is not None:
                try:
                    adapter.validate_python(value, strict=True)
                except PydanticValidationError as exc:
                    first = exc.errors()[0]
                    raise InvalidUpdateError(
                        f"{who} wrote {key!r}={_short(value)} which does not fit "
                        f"{_type_name(f.type)}: {first['msg']}"
                    ) from None
        return update

    def apply(self, state: dict[str, Any], writes: list[tuple[str, dict[str, Any]]]) -> None:
        """Apply ordered (task_id, update) writes to ``state`` in place, through the reducers.

        Two tasks writing the same replace-field in one step is a conflict, never a silent win.
        """
        fields = self.fields
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


def reducers_from_names(names: Mapping[str, str]) -> StateSchema:
    """A schema-less view that can rebuild stored state with built-in reducers only."""
    view = StateSchema(None)
    for name, rname in names.items():
        if rname not in BUILTIN:
            continue
        view.fields[name] = Field(name, Any, BUILTIN[rname])
    return view


def _is_typeddict(tp: Any) -> bool:
    return typing.is_typeddict(tp)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."
