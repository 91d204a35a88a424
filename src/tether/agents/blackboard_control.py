"""The blackboard's Model controller: asked who acts next among the triggered sources, its
answer read as one of their names (a near miss such as ``parse`` for ``parser`` is not taken),
and sent back while it names none of them, or several."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tether.core import serde
from tether.core.errors import StructuredOutputError
from tether.core.messages import Message
from tether.llm.model import Model
from tether.llm.types import ModelResponse


def named(said: str, candidates: Sequence[str]) -> str | None:
    """The candidate a controller's answer names: the whole answer (case, quotes and end
    punctuation aside), else the one candidate it names as a word (``parse`` is not named in
    ``parser``); None when it names none of them, or several."""
    bare = said.strip().strip("\"'`*.!").strip().lower()
    for name in candidates:
        if bare == name.lower():
            return name
    hits = mentioned(said, candidates)
    return hits[0] if len(hits) == 1 else None


def mentioned(said: str, candidates: Sequence[str]) -> list[str]:
    """The candidates ``said`` names as words; a name inside another one named ("analyst" in
    "data analyst") is not a second one."""
    hits = [
        n
        for n in candidates
        if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", said, re.IGNORECASE)
    ]
    return [h for h in hits if not any(h != o and h.lower() in o.lower() for o in hits)]


async def ask_model(
    model: Model, board: Mapping[str, Any], candidates: Mapping[str, str], max_repairs: int
) -> tuple[str, list[ModelResponse]]:
    """Ask the controller model who of ``candidates`` (name: description) acts next; an answer
    that names none of them, or several, goes back to it (``max_repairs`` rounds), then the
    run fails with a typed error."""
    pending = list(candidates)
    menu = "\n".join(f"- {n}: {d}" for n, d in candidates.items())
    convo = [
        Message.system("Pick who acts next on the board. Answer with one name."),
        Message.user(f"Board: {serde.dumps(board).decode()}\n\nCandidates:\n{menu}"),
    ]
    responses: list[ModelResponse] = []
    while True:
        response = await model.chat(convo)
        responses.append(response)
        chosen = named(response.text, pending)
        if chosen is not None:
            return chosen, responses
        if len(responses) > max_repairs:
            break
        convo += [
            response.message(),
            Message.user(f"Answer with exactly one of these names, nothing else: {pending}"),
        ]
    how = "several" if len(mentioned(response.text, pending)) > 1 else "none"
    problem = f"its answer {response.text.strip()[:200]!r} names {how} of {pending}"
    raise StructuredOutputError(
        f"the blackboard controller picked nobody in {len(responses)} attempt(s): {problem}; "
        "give it a clearer prompt or source descriptions, more max_repairs, or a function "
        "controller",
        model=model.name,
        attempts=len(responses),
        errors=[problem],
        last_output=response.text,
    )
