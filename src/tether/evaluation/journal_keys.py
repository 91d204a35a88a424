"""Where a journaled call was made, read back from its effect key.

A default journal key is ``{run}:{step}:{node}:{task index}:{kind}:{call index}``
(``tether.core.ids.effect_key``), where ``kind`` may itself hold a colon (``tool:search``).
A key a tool contract derived from its arguments says none of this: ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallSite:
    step: int
    node: str
    task_id: str
    kind: str
    index: int


def call_site(run_id: str, key: str) -> CallSite | None:
    prefix = f"{run_id}:"
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix) :].split(":", 3)
    if len(parts) != 4:
        return None
    step, node, task_index, rest = parts
    kind, sep, index = rest.rpartition(":")
    if not sep or not kind or not (step.isdigit() and task_index.isdigit() and index.isdigit()):
        return None
    return CallSite(int(step), node, f"{step}:{node}:{task_index}", kind, int(index))
