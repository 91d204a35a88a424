"""The plan a planner that read only the user's request could commit (the ``plan`` setting).

The reference and hijacked agents know the user task's ground-truth calls (AgentDojo computes
them from the environment before the run). A real plan-then-act model writes them from the
request alone, naming where each value will come from (ReWOO's ``#E1``, CaMeL's variables).
``planned`` turns the ground truth into such a plan with what a planner can know:

* a value the request states (every string and number in it) is fixed;
* a value the result of an earlier planned call holds is ``OPEN.from_step(j)`` (``j`` the
  earliest such call: the step the planner would read it from);
* a string partly stated by the request is a ``Template``: the request's words as written,
  a ``{}`` (one line of text) for read values and everything else (``"Dinner at {}"``);
* anything else (a sum it computes, a date it picks, its own prose) is ``OPEN``.

Which earlier call holds a value is read from ``outputs``: the results of the ground-truth
calls run on a copy of the case's environment *without* the injection (the planner's
knowledge of which step feeds which argument, not of what any step will return in the run).
The answer is a planned ``answer`` call too: its text a ``Template`` built the same way (so
the plan fixes its lines, not what goes into them).
"""

from __future__ import annotations

import re
from typing import Any

from agentdojo.functions_runtime import FunctionCall

from tether.governance import OPEN, PlannedCall, Template
from tether.governance.provenance_index import ContentIndex, derive, leaves

ANSWER = "answer"
"""The tool a plan-then-act agent gives its answer through (an egress to the user: write)."""
_WORD = re.compile(r"\S+")
MIN_PART = 3
"""Stated words shorter than this (characters) are not kept as the request's own."""


def planned(
    calls: list[FunctionCall], request: str, outputs: list[str], answer: str | None = None
) -> list[PlannedCall]:
    said = _index(request)
    reads = [_index(o) for o in outputs]
    steps = []
    for i, c in enumerate(calls):
        args = {k: _arg(v, said, reads[:i]) for k, v in c.args.items()}
        steps.append(PlannedCall(c.function, args))
    if answer is not None:
        steps.append(PlannedCall(ANSWER, {"text": _template(answer, said, reads)}))
    return steps


def _index(value: Any) -> ContentIndex:
    idx = ContentIndex()
    idx.add(value, "content")
    return idx


_NOTHING = ContentIndex()


def _holds(idx: ContentIndex, value: Any) -> bool:
    """Whether every string and number in ``value`` derives from ``idx``."""
    scalars = [leaf for _, leaf in leaves(value) if isinstance(leaf, str | int | float)]
    return bool(scalars) and all(derive({"v": s}, idx, _NOTHING, 0) for s in scalars)


def _arg(value: Any, said: ContentIndex, reads: list[ContentIndex]) -> Any:
    if not [leaf for _, leaf in leaves(value) if isinstance(leaf, str | int | float)]:
        return value  # flags and empty values: the planner's own choice
    if _holds(said, value):
        return value
    for j, idx in enumerate(reads):
        if _holds(idx, value):
            return OPEN.from_step(j)
    if isinstance(value, str):
        shaped = _template(value, said, reads)
        if any(ch.isalnum() for ch in shaped.pattern.replace("{}", "")):
            return shaped  # the request's own words around the read values
    return OPEN


def _template(text: str, said: ContentIndex, reads: list[ContentIndex]) -> Template:
    """``text`` as the planner can shape it, line by line: each longest run of words an
    earlier planned call returns is a ``{}`` (one line of text), each longest run the request
    states stays as written, any other word (a computed value, its own prose) is a ``{}``;
    the spacing and punctuation between words stay."""
    lines = []
    for line in text.split("\n"):
        spans = [(m.start(), m.end()) for m in _WORD.finditer(line)]
        out: list[str] = []
        at, i = 0, 0
        while i < len(spans):
            for j in range(len(spans), i, -1):
                start, end = spans[i][0], spans[j - 1][1]
                core = line[start:end].strip(_PUNCT)
                if len(core) < MIN_PART:
                    continue
                if any(_holds(r, core) for r in reads):
                    piece = "{}"
                elif _holds(said, core):
                    piece = _literal(core)
                else:
                    continue
                begin = start + line[start:end].index(core)
                out += [_literal(line[at:begin]), piece]
                at, i = begin + len(core), j
                break
            else:
                start, end = spans[i]
                core = line[start:end].strip(_PUNCT) or line[start:end]
                begin = start + line[start:end].index(core)
                out += [_literal(line[at:begin]), "{}"]
                at, i = begin + len(core), i + 1
        out.append(_literal(line[at:]))
        lines.append("".join(out))
    return Template("\n".join(lines))


_PUNCT = ",.;:'\"()"


def _literal(text: str) -> str:
    return text.replace("{}", "{ }")
