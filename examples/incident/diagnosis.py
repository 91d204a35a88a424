"""The diagnosis the model writes, and the deterministic validator that checks it cites evidence.

A diagnosis names a cause, cites evidence ids (``E1``...), quotes a fragment copied verbatim
from one of them, and proposes a remediation from the recalled runbook (or none). The validator
is the critic of tether's reflection pattern (``tether.agents.reflection``): it returns the
problems found; the graph sends them back to the model, at most ``MAX_ROUNDS`` times.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from .plan import evidence_line

MAX_ROUNDS = 2
"""Diagnoses written before the assistant gives up and hands the incident to a human."""
MIN_QUOTE = 12

DIAGNOSIS_SYSTEM = (
    "You diagnose a production incident from the evidence only. Answer JSON: "
    '{"cause": "<one sentence>", "evidence": ["E1", ...], "quote": "<a fragment of at '
    'least 12 characters copied exactly from one cited evidence line>", "remediation": '
    '"restart_service" | "none"}.'
)


class Diagnosis(BaseModel):
    cause: str = Field(min_length=1, max_length=400)
    evidence: list[str] = Field(default_factory=list, max_length=10)
    quote: str = Field(default="", max_length=300)
    remediation: Literal["restart_service", "none"] = "none"


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
