"""JSON Schema validation of a remote tool's arguments.

An MCP tool describes its arguments with a JSON Schema (``inputSchema``), not with Python types,
so an imported tool validates them with ``jsonschema`` (a dependency of the MCP SDK) against the
schema exactly as the server published it: ``additionalProperties: false`` forbids extra
arguments, ``$ref`` resolves inside the document only (nothing is fetched), and the draft is the
one the schema names (2020-12, MCP's default, when it names none).

The contract still needs a pydantic ``args_model``: :func:`args_model_for` builds one whose
``model_json_schema()`` is the remote schema and whose ``model_validate()`` runs the same check,
so code that only knows pydantic sees the tool as the server describes it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from jsonschema import SchemaError
from jsonschema.validators import Draft202012Validator, validator_for
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from referencing import Registry
from referencing.exceptions import Unresolvable

log = logging.getLogger(__name__)

MAX_ERRORS = 20
"""At most this many problems are reported for one call (a model reads all of them)."""

_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True, slots=True)
class ArgumentProblem:
    """One way the arguments miss the schema: where (a path of keys and indexes) and what."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class ArgumentsSchema:
    """A compiled validator for one tool's ``inputSchema``."""

    def __init__(self, schema: Mapping[str, Any] | None, *, tool: str = "") -> None:
        self.tool = tool
        raw = dict(schema) if isinstance(schema, Mapping) else dict(_OBJECT_SCHEMA)
        self.schema: dict[str, Any] = raw
        cls = validator_for(raw, default=Draft202012Validator)
        try:
            cls.check_schema(raw)
        except SchemaError as exc:
            # The server will validate anyway; a broken schema must not make the whole toolset
            # unusable, so the tool is kept and only the "an object of named arguments" rule stays.
            log.warning(
                "MCP tool %r publishes an invalid inputSchema (%s); its arguments are "
                "checked by the server only",
                tool,
                exc.message,
            )
            raw = dict(_OBJECT_SCHEMA)
            cls = Draft202012Validator
        # An empty registry: a `$ref` resolves inside the schema document, never over the network.
        self._validator = cls(raw, registry=Registry())

    def problems(self, args: Any) -> list[ArgumentProblem]:
        """Everything wrong with ``args`` (empty when they conform), ordered by location."""
        try:
            errors = sorted(
                self._validator.iter_errors(args),
                key=lambda e: (list(map(str, e.absolute_path)), str(e.message)),
            )
        except Unresolvable as exc:
            # a `$ref` to another document: not fetched, so the server has the last word
            log.warning("MCP tool %r: cannot check arguments locally (%s)", self.tool, exc)
            return []
        return [
            ArgumentProblem(tuple(e.absolute_path), str(e.message), str(e.validator))
            for e in errors[:MAX_ERRORS]
        ]


def format_problems(problems: list[ArgumentProblem]) -> str:
    return "; ".join(f"{'.'.join(map(str, p.loc)) or '(arguments)'}: {p.msg}" for p in problems)


class JsonSchemaArgs(BaseModel):
    """Base of the ``args_model`` of an imported tool: any named arguments, checked against the
    remote JSON Schema. Subclasses are built by :func:`args_model_for`."""

    model_config = ConfigDict(extra="allow")
    tether_input_schema: ClassVar[ArgumentsSchema]

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.tether_input_schema.schema)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        problems = cls.tether_input_schema.problems(obj)
        if problems:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("json_schema", "{message}", {"message": p.msg}),
                        loc=p.loc,
                        input=obj,
                    )
                    for p in problems
                ],
            )
        return super().model_validate(obj, *args, **kwargs)


def args_model_for(name: str, schema: ArgumentsSchema) -> type[JsonSchemaArgs]:
    """A pydantic model standing for a remote tool's arguments (see the module docstring)."""

    class Args(JsonSchemaArgs):
        tether_input_schema: ClassVar[ArgumentsSchema] = schema

    Args.__name__ = Args.__qualname__ = f"{name}_args"
    return Args
