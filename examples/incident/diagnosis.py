"""The diagnosis the model writes, and the deterministic validator that checks it cites evidence.

A diagnosis names a cause, cites evidence ids (``E1``...), quotes a fragment copied verbatim
from one of them, and proposes a remediation from the recalled runbook (or none). The validator
is the critic of tether's reflection pattern (``tether.agents.reflection``): it returns the
problems found; the graph sends them back to the model, at most ``MAX_ROUNDS`` times.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model

from .plan import evidence_line

MAX_ROUNDS = 2
"""Diagnoses written before the assistant gives up and hands the incident to a human."""
MIN_QUOTE = 12

DIAGNOSIS_SYSTEM = (
    "You diagnose a production incident from the evidence only. Answer JSON with: evidence "
    "(the ids of the evidence that shows the cause), quote (3 to 8 words copied exactly from "
    "one of those evidence lines), cause (one sentence), remediation (restart_service or none, "
    "as the runbook says).\n"
    "Example. Evidence:\n"
    "E1 search_log(pattern='oom'): 2 matching line(s), the last 2:\n"
    "    10:01 ERROR api worker 3 out of memory: killed\n"
    "    10:02 ERROR api worker 4 out of memory: killed\n"
    "E2 disk_usage(): / 40% used of 80G\n"
    'Answer: {"evidence": ["E1"], "quote": "out of memory: killed", '
    '"cause": "api workers run out of memory", "remediation": "restart_service"}'
)


class Diagnosis(BaseModel):
    evidence: list[str] = Field(default_factory=list, max_length=4)
    quote: str = Field(default="", max_length=160)
    cause: str = Field(min_length=1, max_length=400)
    remediation: Literal["restart_service", "none"] = "none"


def answer_schema(evidence: list[dict[str, Any]]) -> type[Diagnosis]:
    """``Diagnosis`` with ``evidence`` narrowed to this run's ids: a model whose output is
    constrained by the schema (the local model's grammar) cannot name evidence that does not
    exist. The validator checks the ids again, for models that are not constrained."""
    ids = tuple(e["id"] for e in evidence) or ("E1",)
    item = Literal[ids]  # type: ignore[valid-type]
    field: Any = (list[item], Field(default_factory=list, max_length=4))
    return create_model("Diagnosis", __base__=Diagnosis, evidence=field)


def diagnosis_prompt(
    alert: dict[str, Any],
    runbook: dict[str, Any],
    evidence: list[dict[str, Any]],
    problems: list[str],
) -> str:
    lines = "\n".join(evidence_line(e) for e in evidence) or "(no evidence)"
    prompt = (
        f"Alert {alert['id']} on {alert['service']}: {alert['summary']}\n"
        f"Runbook: {runbook.get('text', 'none found')}\n"
        f"Evidence:\n{lines}\n"
        "Write the diagnosis."
    )
    if problems:
        prompt += "\nYour previous diagnosis failed the check:\n" + "\n".join(
            f"- {p}" for p in problems
        )
    return prompt


def evidence_validator(evidence: list[dict[str, Any]], runbook: dict[str, Any]) -> Any:
    """A validator (``output -> problems``) over this run's evidence and runbook."""
    by_id = {e["id"]: e for e in evidence}
    allowed = {"none", str(runbook.get("remediation") or "none")}

    def check(output: str) -> list[str]:
        try:
            d = Diagnosis.model_validate_json(output)
        except ValidationError as exc:
            return [f"the diagnosis is not the JSON asked for: {exc.errors()[0]['msg']}"]
        problems: list[str] = []
        if not d.evidence:
            problems.append(f"cite at least one evidence id, from {sorted(by_id)}")
        unknown = [i for i in d.evidence if i not in by_id]
        if unknown:
            problems.append(f"{unknown} are not evidence ids; cite from {sorted(by_id)}")
        failed = [i for i in d.evidence if i in by_id and not by_id[i]["ok"]]
        if failed:
            problems.append(f"{failed} failed to run; cite evidence that ran")
        cited = [_plain(evidence_line(by_id[i])) for i in d.evidence if by_id.get(i, {}).get("ok")]
        quote = _plain(d.quote)
        if len(quote) < MIN_QUOTE or not any(quote in line for line in cited):
            problems.append(
                f"the quote must be at least {MIN_QUOTE} characters copied exactly from a "
                "cited evidence line"
            )
        if d.remediation not in allowed:
            problems.append(
                f"runbook {runbook.get('runbook', '?')} allows remediation {sorted(allowed)}, "
                f"not {d.remediation!r}"
            )
        return problems

    return check


def _plain(text: str) -> str:
    """Case and runs of whitespace do not count when matching a quote."""
    return " ".join(text.lower().split())
