"""Regex ``pattern`` keywords never reach llama.cpp's grammar parser (it crashes the process)."""

from __future__ import annotations

import subprocess
import sys

from tether.llm.providers.llama_engine import grammar_schema

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": r"^#E\d+$"},
        "pattern": {"type": "string", "pattern": r"\w+"},  # a property named "pattern"
        "steps": {"type": "array", "items": {"type": "string", "pattern": r"^\d{2}$"}},
        "ref": {"$ref": "#/$defs/Ref"},
    },
    "$defs": {"Ref": {"type": "string", "pattern": r"^R\d$", "minLength": 2}},
    "required": ["id", "pattern"],
}


def test_patterns_are_dropped_and_everything_else_kept() -> None:
    out = grammar_schema(SCHEMA)
    assert out["properties"]["id"] == {"type": "string"}
    assert out["properties"]["pattern"] == {"type": "string"}  # the property stays
    assert out["properties"]["steps"]["items"] == {"type": "string"}
    assert out["$defs"]["Ref"] == {"type": "string", "minLength": 2}
    assert out["required"] == ["id", "pattern"]
    assert SCHEMA["properties"]["id"]["pattern"] == r"^#E\d+$"  # the input is not changed


PROGRAM = r"""
import asyncio
from pydantic import BaseModel, Field
from tether.core.errors import StructuredOutputError
from tether.llm import generate_structured, model_from_spec

class Step(BaseModel):
    id: str = Field(pattern=r"^#E\d+$")
    tool: str

async def main():
    model = model_from_spec("local:smollm2")
    try:
        res = await generate_structured(
            model, "Plan one step with id #E1 using the tool search.", Step,
            max_tokens=40, max_repairs=0,
        )
        print("value", res.value)
    except StructuredOutputError as exc:  # the small model may miss the pattern: a clean error
        print("invalid", type(exc).__name__)

asyncio.run(main())
"""


def test_the_bundled_model_survives_a_schema_with_a_regex_escape() -> None:
    res = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=600, check=False
    )
    assert res.returncode == 0, (res.returncode, res.stderr[-3000:])
    assert res.stdout.startswith(("value", "invalid")), res.stdout
