"""An MCP server's tool as a ToolContract: its scope and idempotency from the tool's annotations,
its arguments checked against the tool's JSON Schema."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp_types import ToolAnnotations

from tether.core.errors import ToolArgumentsError
from tether.tools.contract import ToolContract
from tether.tools.fitness import unfit_problems
from tether.tools.mcp.schema import ArgumentsSchema, format_problems
from tether.tools.policies import Scope


def scope_of(annotations: ToolAnnotations | None) -> Scope:
    """The tether scope of an MCP tool. Per the MCP spec an unannotated tool may modify its
    environment (``readOnlyHint`` defaults to false) destructively (``destructiveHint`` defaults
    to true), so only an explicit ``destructiveHint: false`` makes a write tool non-destructive."""
    if annotations is not None and annotations.read_only_hint:
        return Scope.READ
    if annotations is not None and annotations.destructive_hint is False:
        return Scope.WRITE
    return Scope.DESTRUCTIVE


def is_idempotent(annotations: ToolAnnotations | None) -> bool:
    """``idempotentHint`` when the server sets it; otherwise read-only tools are idempotent
    (they change nothing, so repeating them is safe) and the others are not."""
    if annotations is not None and annotations.idempotent_hint is not None:
        return annotations.idempotent_hint
    return scope_of(annotations) is Scope.READ


@dataclass(slots=True)
class McpToolContract(ToolContract):
    """A tool on an MCP server. Arguments are checked against the tool's JSON Schema and passed
    on as given (nothing is coerced or filled in: the server applies its own defaults)."""

    remote_name: str = ""
    output_schema: dict[str, Any] | None = None
    arguments_schema: ArgumentsSchema | None = None

    def validate(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        clean = self.named_args(args)
        if self.arguments_schema is not None:
            problems = self.arguments_schema.problems(clean)
            if problems:
                raise ToolArgumentsError(
                    f"invalid arguments for tool {self.name!r}: {format_problems(problems)}",
                    tool=self.name,
                    errors=[p.as_dict() for p in problems],
                )
        bad = unfit_problems(clean)  # what JSON Schema lets through and the journal cannot keep
        if bad:
            raise self._invalid(bad)
        return clean
