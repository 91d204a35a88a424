"""Reading a state class into fields: TypedDict, dataclass, pydantic model or plain class.

What each kind says about a field, in one place:

- **TypedDict**: no defaults. A key marked ``Required[...]`` must be in the run input; other keys
  (``NotRequired``, or plain keys of a ``total`` TypedDict) may be written later by nodes.
- **dataclass**: ``default`` and ``default_factory`` fill a field the input leaves out; a field
  with neither is required in the input.
- **pydantic model**: defaults (and default factories) fill the input, validators run on it, and a
  field without a default is required.
- **plain annotated class**: a class attribute is the field's default; nothing is required.

Defaults are deep-copied for every run, so a mutable default (``reports: list[str] = []``) is
never shared between runs or mutated on the class.

A field marked ``per_run`` (``Annotated[int, add, per_run]``) is the run's own: a new run on a
thread starts it from its initial value instead of carrying the thread's last value over (a
loop counter, a turn's scratch results), while unmarked fields (the conversation) carry over.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter

from tether.core.errors import GraphDefinitionError
from tether.core.reducers import Reducer, as_reducer, replace

MISSING: Any = object()


class PerRun:
    """The ``per_run`` marker: ``Annotated[int, add, per_run]``. Each run of a thread starts the
    field from its initial value (its default, the reducer's empty value, a counter's zero, or
    unset), where other fields continue from the thread's last completed run."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "per_run"


per_run = PerRun()

Kind = typing.Literal["typeddict", "dataclass", "pydantic", "class"]


@dataclass(slots=True)
class Field:
    name: str
    type: Any
    reducer: Reducer
    default: Any = MISSING
    adapter: TypeAdapter[Any] | None = None
    factory: Callable[[], Any] | None = None
    required: bool = False
    """The run input must give this field (it has no default and nothing else fills it)."""
    per_run: bool = False
    """Marked ``per_run``: a thread's next run starts it afresh instead of carrying it over."""
    exact: type[Any] | None = None
    """The field's type when it is a plain ``int``, ``float``, ``str`` or ``bool`` that every
    update is checked against (``adapter``'s type and ``type``): a value of exactly that type
    fits without asking pydantic (about two microseconds a key, at every step)."""

    def initial(self) -> Any:
        """The field's value before the input and any node wrote it (a fresh copy each run)."""
        if self.factory is not None:
            return self.factory()
        if self.default is not MISSING:
            return copy.deepcopy(self.default)
        if self.reducer.empty is not None:
            return self.reducer.empty()
        if self.reducer.name == "add" and self.type in (int, float):
            return self.type()  # a counter starts at zero
        return MISSING


def schema_kind(schema: type[Any]) -> Kind:
    if typing.is_typeddict(schema):
        return "typeddict"
    if dataclasses.is_dataclass(schema):
        return "dataclass"
    if isinstance(getattr(schema, "model_fields", None), dict) and hasattr(
        schema, "model_validate"
    ):
        return "pydantic"
    return "class"


def read_fields(schema: type[Any]) -> tuple[Kind, dict[str, Field]]:
    try:
        hints = get_type_hints(schema, include_extras=True)
    except Exception as exc:
        raise GraphDefinitionError(f"cannot read the state schema {schema!r}: {exc}") from exc
    kind = schema_kind(schema)
    names: list[str]
    if kind == "dataclass":
        dfields = {f.name: f for f in dataclasses.fields(schema)}
        names = [n for n in hints if n in dfields]
    elif kind == "pydantic":
        mfields: dict[str, Any] = schema.model_fields
        names = [n for n in hints if n in mfields]
    else:
        names = [n for n in hints if get_origin(hints[n]) is not typing.ClassVar]
    if not names:
        raise GraphDefinitionError(
            f"state schema {schema.__name__} has no annotated fields; declare them like "
            "`class State(TypedDict): count: int`"
        )
    fields: dict[str, Field] = {}
    for name in names:
        tp, reducer, marked, fresh = _unwrap(name, hints[name])
        f = Field(name, tp, reducer, per_run=fresh)
        if kind == "typeddict":
            f.required = marked == "required"
        elif kind == "dataclass":
            df = dfields[name]
            if df.default is not dataclasses.MISSING:
                f.default = df.default
            elif df.default_factory is not dataclasses.MISSING:
                f.factory = df.default_factory
            f.required = f.default is MISSING and f.factory is None and df.init
        elif kind == "pydantic":
            info = mfields[name]
            f.required = bool(info.is_required())
            if not f.required and info.default_factory is None:
                f.default = info.default
        else:
            f.default = getattr(schema, name, MISSING)
        utype = _update_type(tp, reducer)
        f.adapter = TypeAdapter(utype) if utype is not None and utype is not Any else None
        if utype is tp and tp in _EXACT:
            f.exact = tp
        fields[name] = f
    return kind, fields


_EXACT = (int, float, str, bool)
"""Types whose exact instances pydantic's strict mode always accepts (``Field.exact``)."""


def _unwrap(name: str, hint: Any) -> tuple[Any, Reducer, str | None, bool]:
    """The value type, the reducer, a Required/NotRequired marker of an annotation and whether
    it is marked ``per_run``. The first reducer-like metadata is the reducer."""
    tp, reducer, marked, fresh, reduced = hint, replace, None, False, False
    while True:
        origin = get_origin(tp)
        if origin is typing.Required or origin is typing.NotRequired:
            marked = "required" if origin is typing.Required else "not_required"
            tp = get_args(tp)[0]
        elif origin is typing.Annotated:
            tp, *meta = get_args(tp)
            for m in meta:
                if isinstance(m, PerRun) or m is PerRun:
                    fresh = True
                elif not reduced and (isinstance(m, Reducer | str) or callable(m)):
                    try:
                        reducer = as_reducer(m)
                    except (ValueError, TypeError) as exc:
                        raise GraphDefinitionError(f"field {name!r}: {exc}") from exc
                    reduced = True
        else:
            return tp, reducer, marked, fresh


def _update_type(tp: Any, reducer: Reducer) -> Any:
    """The type a node may write to a field with this reducer."""
    if reducer.name in ("append", "union"):
        args = get_args(tp)
        elem = args[0] if args else Any
        return list[elem] | elem  # type: ignore[valid-type]
    if reducer.name.startswith("custom:"):
        return None
    return tp


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def type_text(tp: Any) -> str:
    """A stable text for a type, the same in every process: classes by qualified name (not
    module, which differs between ``python app.py`` and ``--app app.py:wf``), no addresses."""
    if isinstance(tp, list | tuple):
        return "[" + ", ".join(type_text(a) for a in tp) + "]"
    origin, args = get_origin(tp), get_args(tp)
    if origin is None:
        if isinstance(tp, type):
            return tp.__qualname__
        return _ADDRESS.sub("", repr(tp).replace("typing.", ""))
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_text(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    return f"{type_text(origin)}[{', '.join(type_text(a) for a in args)}]"
