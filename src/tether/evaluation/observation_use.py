"""Whether a tool's observation was used later: the facts only it brought into the run, looked
for in the decisions that came after it (pure; the KPIs' tool utility and the mind log).

A *fact* is a word of three or more letters (not a common English word) or a number, taken
from the leaf values of a value (mapping keys are its shape, not facts; numbers compare by
value, so ``25``, ``25.0`` and ``"$25.00"`` are one fact). An observation's *new* facts are
those not already in the call's arguments nor in the model text that chose the call: a model
that echoes its own query has used nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z][a-z0-9_@-]{2,}")
_STOP_WORDS = (
    "the and for with that this from are was were has have had not you your but all any "
    "can its our out his her their they them then than there here what when where which "
    "who why how into onto over under about after before more most some such only also "
    "just very will would could should may might must been being does did done yes true "
    "false none null okay"
)
_STOP = frozenset(_STOP_WORDS.split(" "))


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


def text_facts(text: str) -> set[str]:
    out: set[str] = set()
    for tok in _TOKEN.findall(text.lower()):
        if tok[0].isdigit():
            out.add(_number(tok))
        elif tok not in _STOP:
            out.add(tok)
    return out


def value_facts(value: Any) -> set[str]:
    """The facts in the leaf values of a JSON-like value."""
    out: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float):
            if v == v and v not in (float("inf"), float("-inf")):  # not NaN or infinite
                out.add(_number(repr(float(v))) if isinstance(v, float) else str(v))
        elif isinstance(v, str):
            out |= text_facts(v)
        elif isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return out


def new_facts(observation: Any, known: Iterable[Any]) -> set[str]:
    """The facts of ``observation`` that none of ``known`` (the call's arguments, the text
    that chose it) already held."""
    facts = value_facts(observation)
    for k in known:
        facts -= value_facts(k)
    return facts


def decision_facts(response: Mapping[str, Any]) -> set[str]:
    """The facts in a recorded model response: its text and its tool calls' arguments."""
    facts = text_facts(str(response.get("text") or ""))
    for call in response.get("tool_calls") or ():
        if isinstance(call, Mapping):
            facts |= value_facts(call.get("arguments"))
    return facts
