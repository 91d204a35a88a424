"""The pure parts: JSON Schema checks, scope mapping, result shapes, the server's call path."""

from __future__ import annotations

import pytest
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from tether.core.errors import ConfigurationError
from tether.tools.contract import tool
from tether.tools.mcp import call_contract, is_idempotent, result_value, scope_of, serve_tools
from tether.tools.mcp.schema import ArgumentsSchema, args_model_for
from tether.tools.mcp.server import output_schema_for
from tether.tools.policies import Scope

SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "minLength": 1},
        "opts": {"$ref": "#/$defs/Opts"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["path"],
    "additionalProperties": False,
    "$defs": {
        "Opts": {
            "type": "object",
            "properties": {"depth": {"type": "integer"}},
            "required": ["depth"],
        }
    },
}


def test_json_schema_problems_with_locations():
    schema = ArgumentsSchema(SCHEMA)
    assert schema.problems({"path": "/tmp", "opts": {"depth": 2}, "tags": ["a"]}) == []
    problems = {
        (p.loc, p.type)
        for p in schema.problems({"path": "", "opts": {"depth": "deep"}, "tags": ["a", 1], "x": 1})
    }
    assert problems == {
        (("path",), "minLength"),
        (("opts", "depth"), "type"),
        (("tags", 1), "type"),
        ((), "additionalProperties"),
    }
    assert [p.type for p in schema.problems({})] == ["required"]


def test_a_ref_outside_the_document_is_never_fetched(caplog):
    schema = ArgumentsSchema(
        {"type": "object", "properties": {"a": {"$ref": "https://example.invalid/s.json"}}}
    )
    assert schema.problems({"a": 1}) == []  # left to the server
    assert "cannot check arguments locally" in caplog.text


def test_an_invalid_schema_falls_back_to_any_object(caplog):
    schema = ArgumentsSchema(
        {"type": "object", "properties": {"a": {"type": "no-such-type"}}}, tool="odd"
    )
    assert "invalid inputSchema" in caplog.text
    assert schema.problems({"a": 1}) == []
    assert schema.problems([1]) != []


def test_the_args_model_speaks_the_remote_schema():
    model = args_model_for("fs.read", ArgumentsSchema(SCHEMA))
    assert model.__name__ == "fs.read_args"
    assert model.model_json_schema() == SCHEMA
    assert model.model_validate({"path": "/x"}).model_dump() == {"path": "/x"}
    with pytest.raises(ValidationError) as info:
        model.model_validate({"path": 3})
    assert info.value.errors()[0]["loc"] == ("path",)


@pytest.mark.parametrize(
    ("annotations", "scope", "idempotent"),
    [
        (None, Scope.DESTRUCTIVE, False),
        (ToolAnnotations(), Scope.DESTRUCTIVE, False),
        (ToolAnnotations(read_only_hint=True), Scope.READ, True),
        (ToolAnnotations(read_only_hint=True, idempotent_hint=False), Scope.READ, False),
        (ToolAnnotations(destructive_hint=True), Scope.DESTRUCTIVE, False),
        (ToolAnnotations(destructive_hint=False), Scope.WRITE, False),
        (ToolAnnotations(destructive_hint=False, idempotent_hint=True), Scope.WRITE, True),
        (ToolAnnotations(idempotent_hint=True), Scope.DESTRUCTIVE, True),
    ],
)
def test_scope_and_idempotency_from_annotations(annotations, scope, idempotent):
    assert scope_of(annotations) is scope
    assert is_idempotent(annotations) is idempotent


def test_result_values():
    wrapped = {
        "type": "object",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
    }
    assert result_value(CallToolResult(content=[], structured_content={"result": 3}), wrapped) == 3
    # not the wrapper schema: the object as it is
    assert result_value(CallToolResult(content=[], structured_content={"result": 3})) == {
        "result": 3
    }
    two = [TextContent(text="a"), TextContent(text="b")]
    assert result_value(CallToolResult(content=two)) == "a\nb"
    assert result_value(CallToolResult(content=[])) is None
    image = ImageContent(data="AAAA", mime_type="image/png")
    assert result_value(CallToolResult(content=[image])) == [
        {"type": "image", "data": "AAAA", "mimeType": "image/png"}
    ]


class Node(BaseModel):
    name: str
    children: list[Node] = []


def test_output_schemas_wrap_what_is_not_an_object():
    @tool
    def nodes() -> list[Node]:
        return []

    @tool
    def one() -> Node:
        return Node(name="n")

    @tool
    def untyped():  # no annotation: no output schema
        return 1

    schema, wrapped = output_schema_for(nodes)
    assert wrapped and schema is not None and "Node" in schema["$defs"]
    assert schema["properties"]["result"]["items"] == {"$ref": "#/$defs/Node"}
    assert output_schema_for(untyped) == (None, False)
    schema, wrapped = output_schema_for(one)
    assert not wrapped and schema is not None and schema["type"] == "object"
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}


async def test_call_contract_turns_every_failure_into_an_error_result():
    @tool
    def add(a: int, b: int) -> int:
        return a + b

    @tool
    def bad() -> int:
        return "not an int"  # type: ignore[return-value]

    ok = await call_contract(add, {"a": 1, "b": 2})
    assert ok.structured_content == {"result": 3} and not ok.is_error
    for contract, args in [(add, {"a": "x"}), (add, None), (add, "junk"), (bad, {})]:
        result = await call_contract(contract, args)
        assert result.is_error and result.content


def test_serve_tools_refuses_duplicates_and_non_contracts():
    @tool
    def a() -> int:
        return 1

    with pytest.raises(ConfigurationError, match="two tools"):
        serve_tools([a, a])
    with pytest.raises(ConfigurationError, match="ToolContracts"):
        serve_tools([lambda: 1])  # type: ignore[list-item]
