"""Between A2A messages and tether runs: a message's parts as a run's input or an interrupt's
answer, and a run's outcome as parts.

Input: a data part holding a JSON object is the run's input as it is (state fields). Text is
put in the workflow's text field: the first ``str`` field among ``input``, ``text``,
``message``, ``query``, ``question``, ``prompt``, ``task``, else the schema's only ``str``
field. An answer to an interrupt is the data part's value, else the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_text_part
from a2a.types import Part

from tether.core.errors import InvalidInputError
from tether.graph.builder import Workflow

TEXT_FIELDS = ("input", "text", "message", "query", "question", "prompt", "task")
OUTPUT_FIELDS = ("answer", "output", "result", "reply", "response", "summary", "text")


def _ints(value: Any) -> Any:
    """protobuf's Value keeps every number as a double: whole floats back to ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return value


def text_field(wf: Workflow) -> str | None:
    fields = wf.schema.fields
    strs = [n for n, f in fields.items() if f.type is str]
    for name in TEXT_FIELDS:
        if name in strs:
            return name
    return strs[0] if len(strs) == 1 else None


def run_input(wf: Workflow, parts: Sequence[Part]) -> dict[str, Any]:
    """The input of a run started by a message with ``parts``."""
    for data in get_data_parts(parts):
        if isinstance(data, dict):
            return dict(_ints(data))
    text = "\n".join(get_text_parts(parts)).strip()
    if not text:
        raise InvalidInputError(
            f"the message to agent {wf.name!r} has no text and no data part with a JSON "
            "object; send the run's input as a data part (an object of state fields) or as text"
        )
    name = text_field(wf)
    if name is None:
        fields = ", ".join(sorted(wf.schema.fields)) or "none"
        raise InvalidInputError(
            f"workflow {wf.name!r} has no text field to put a text message in (its fields: "
            f"{fields}); send a data part with a JSON object of its state fields instead"
        )
    return {name: text}


def answer(parts: Sequence[Part]) -> Any:
    """The value a follow-up message answers an interrupt with."""
    data = get_data_parts(parts)
    if data:
        return _ints(data[0])
    return "\n".join(get_text_parts(parts))


def output_parts(state: Mapping[str, Any]) -> list[Part]:
    """A finished run's outcome: its text answer (the first ``str`` among the usual output
    fields) and the whole final state as a data part."""
    parts: list[Part] = []
    for name in OUTPUT_FIELDS:
        value = state.get(name)
        if isinstance(value, str) and value:
            parts.append(new_text_part(value))
            break
    parts.append(new_data_part(json.loads(json.dumps(dict(state), default=str))))
    return parts


def result_id(run_id: str) -> str:
    """The id of a completed run's ``result`` artifact: the executor streams it under this id
    and the task store (``a2a_tasks``) reads it back under it, so a task has one."""
    return f"{run_id}:result"


def interrupt_text(interrupts: Sequence[Mapping[str, Any]], reason: str) -> str:
    """What the agent asks for, as one text: each interrupt's payload (text as it is, other
    values as JSON)."""
    asks: list[str] = []
    for item in interrupts:
        payload = item.get("payload") if isinstance(item, Mapping) else item
        asks.append(payload if isinstance(payload, str) else json.dumps(payload, default=str))
    return "\n".join(asks) or reason or "the run waits for input"


def ask_parts(escalation: Mapping[str, Any] | None) -> list[Part]:
    """The status message of an ``input-required`` task, from its run's escalation: what it
    asks (text) and the escalation's kind, reason and interrupts (data)."""
    esc = escalation or {}
    interrupts = list(esc.get("interrupts") or [])
    data = {
        "kind": esc.get("kind"),
        "reason": esc.get("reason"),
        "interrupts": json.loads(json.dumps(interrupts, default=str)),
    }
    ask = interrupt_text(interrupts, str(esc.get("reason") or ""))
    return [new_text_part(ask), new_data_part(data)]


def failure_text(error: Mapping[str, Any] | None) -> str:
    """The status message of a ``failed`` task, from its run's error."""
    err = error or {}
    return f"{err.get('type', 'error')}: {err.get('message', 'the run failed')}"
