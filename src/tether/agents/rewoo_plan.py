"""ReWOO plans, pure: the planner's output schema, its checks, placeholder dependencies and
substitution of evidence into a step's arguments.

A plan is a list of steps ``{"id": "#E1", "tool": "search", "args": {...}}``; a string
argument may name earlier evidence (``"#E1"`` alone: that step's value as is; inside a longer
string: its text), which makes the step depend on it. Steps with no pending dependency run
together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from tether.core import serde
from tether.governance.plan import OPEN, PlannedCall

PLACEHOLDER = re.compile(r"#E\d+")


class PlanStep(BaseModel):
    id: str = Field(description="evidence name: #E1, #E2, ...")
    """Checked by ``plan_problems``, not by a schema ``pattern``: the bundled model's grammar
    builder cannot compile regex escapes."""
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class Plan(BaseModel):
    steps: list[PlanStep] = Field(min_length=1)


REASON_CHARS = 200
"""Longest ``reason`` (and placeholder-or-text argument) the plan schema allows: a small model
otherwise rambles inside one string until its context is full."""
_PLACEHOLDER_OR_TEXT = {"type": "string", "maxLength": REASON_CHARS}


def plan_schema(tools: Mapping[str, Mapping[str, Any]], max_steps: int) -> dict[str, Any]:
    """The JSON schema of a plan over these tools (name: its input schema): each step names
    one of them with that tool's arguments (an argument may also be a ``#E`` placeholder, so
    any of them may be a string), and there are at most ``max_steps`` steps. A constrained
    decoder (the bundled model's grammar) enforces it, so a small model can neither name a
    tool that does not exist, leave out its arguments, nor repeat steps until its context is
    full; ``Plan`` still validates what comes back."""
    steps = [
        {
            "type": "object",
            "properties": {
                "id": {
                    "type": "string",
                    "enum": [f"#E{i}" for i in range(1, max_steps + 1)],
                    "description": "evidence name: #E1, #E2, ...",
                },
                "tool": {"type": "string", "enum": [name]},
                "args": _placeholder_args(schema),
                "reason": {"type": "string", "maxLength": REASON_CHARS},
            },
            "required": ["id", "tool", "args"],
        }
        for name, schema in sorted(tools.items())
    ]
    return {
        "title": "Plan",
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": steps[0] if len(steps) == 1 else {"anyOf": steps},
                "minItems": 1,
                "maxItems": max_steps,
            }
        },
        "required": ["steps"],
    }


def _placeholder_args(schema: Mapping[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return {"type": "object"}
    out: dict[str, Any] = {
        "type": "object",
        "properties": {k: {"anyOf": [_bounded(v), _PLACEHOLDER_OR_TEXT]} for k, v in props.items()},
    }
    required = schema.get("required")
    if isinstance(required, list) and required:
        out["required"] = list(required)
    return out


def references(value: Any) -> set[str]:
    """Placeholders named anywhere in ``value`` (strings inside dicts and lists too)."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(references(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(references(v) for v in value)) if value else set()
    return set()


def plan_problems(plan: Plan, tools: Sequence[str]) -> list[str]:
    """What is wrong with ``plan`` (empty: runnable): unknown tools, repeated ids, a reference
    to evidence no earlier step produces (which also rules out cycles)."""
    problems: list[str] = []
    seen: set[str] = set()
    for step in plan.steps:
        if not PLACEHOLDER.fullmatch(step.id):
            problems.append(f"step id {step.id!r} is not of the form #E1, #E2, ...")
        if step.tool not in tools:
            problems.append(f"{step.id}: unknown tool {step.tool!r}; use one of {list(tools)}")
        if step.id in seen:
            problems.append(f"{step.id} is defined twice; give each step its own #E number")
        missing = sorted(references(step.args) - seen)
        if missing:
            problems.append(
                f"{step.id} uses {', '.join(missing)} before it is produced; a step may only "
                "use the evidence of steps listed before it"
            )
        seen.add(step.id)
    return problems


def ready_steps(plan: Plan, evidence: Mapping[str, Any]) -> list[PlanStep]:
    """Steps not run yet whose every referenced evidence is in: the next parallel wave."""
    return [s for s in plan.steps if s.id not in evidence and references(s.args) <= set(evidence)]


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else serde.dumps(value).decode()


def substitute(value: Any, evidence: Mapping[str, Any]) -> Any:
    """``value`` with placeholders replaced: a string that is exactly ``#En`` becomes that
    evidence's value; a longer string gets its text."""
    if isinstance(value, str):
        if PLACEHOLDER.fullmatch(value) and value in evidence:
            return evidence[value]
        return PLACEHOLDER.sub(
            lambda m: as_text(evidence[m.group(0)]) if m.group(0) in evidence else m.group(0),
            value,
        )
    if isinstance(value, Mapping):
        return {k: substitute(v, evidence) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, evidence) for v in value]
    return value


def _bounded(schema: Any) -> Any:
    """``schema`` where a ``#E`` placeholder may stand at any level (a list of them, a field
    of an object), with a length bound (``REASON_CHARS``) on strings that have none."""
    if not isinstance(schema, Mapping):
        return schema
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema:
        return {**schema, "maxLength": REASON_CHARS}
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        return {**schema, "items": {"anyOf": [_bounded(schema["items"]), _PLACEHOLDER_OR_TEXT]}}
    if kind == "object" and isinstance(schema.get("properties"), Mapping):
        props = {
            k: {"anyOf": [_bounded(v), _PLACEHOLDER_OR_TEXT]}
            for k, v in schema["properties"].items()
        }
        return {**schema, "properties": props}
    return schema


def planned_calls(plan: Plan) -> list[PlannedCall]:
    """``plan`` as the injection guard holds the run to it (``tether.governance.commit_plan``):
    an argument that is exactly ``#En`` comes from that step's result (``OPEN.from_step``), one
    that carries a placeholder anywhere else is ``OPEN``, any other is fixed as written."""
    index = {step.id: i for i, step in enumerate(plan.steps)}

    def arg(value: Any) -> Any:
        if isinstance(value, str) and PLACEHOLDER.fullmatch(value) and value in index:
            return OPEN.from_step(index[value])
        return OPEN if references(value) else value

    return [PlannedCall(s.tool, {k: arg(v) for k, v in s.args.items()}) for s in plan.steps]
