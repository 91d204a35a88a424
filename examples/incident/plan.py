"""The bounded plan: each round the model picks the next read-only diagnostic (or says it has
seen enough); the graph checks the pick and falls back on the runbook when the answer is unusable.

The model never names a tool outside ``DIAGNOSTICS`` (the answer's schema forbids it) and never
names the service (the alert does). What bounds the loop is the graph (at most
``MAX_DIAGNOSTICS`` diagnostics) and, around everything, the run's budget.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .tools import DIAGNOSTICS

MAX_DIAGNOSTICS = 5
"""The plan's bound: diagnostics run before the assistant must conclude."""

PLAN_SYSTEM = (
    "You plan read-only diagnostics for a production incident. Pick the ONE next check, or "
    '"done" when the evidence is enough. Answer JSON: {"tool": "search_log" | '
    '"service_status" | "disk_usage" | "done", "pattern": "<regex, for search_log only>", '
    '"why": "<one short reason>"}.'
)


class NextCheck(BaseModel):
    tool: Literal["search_log", "service_status", "disk_usage", "done"]
    pattern: str = Field(default="", max_length=200)
    why: str = Field(default="", max_length=120)


def plan_prompt(
    alert: dict[str, Any], runbook: dict[str, Any], evidence: list[dict[str, Any]]
) -> str:
    seen = "\n".join(evidence_line(e) for e in evidence) or "(none yet)"
    return (
        f"Alert {alert['id']} on {alert['service']}@{alert['host']}: {alert['summary']}\n"
        f"Runbook: {runbook.get('text', 'none found')}\n"
        f"Evidence so far:\n{seen}\n"
        f"{MAX_DIAGNOSTICS - len(evidence)} check(s) left. What is the next check?"
    )


def evidence_line(e: dict[str, Any]) -> str:
    """One evidence item as the model (and the validator) sees it: ``E2 service_status(...)``."""
    args = ", ".join(f"{k}={v!r}" for k, v in e["args"].items() if k != "service")
    body = e["output"] if e["ok"] else f"FAILED: {e['output']}"
    return f"{e['id']} {e['tool']}({args}): {body}"


def call_of(pick: NextCheck, service: str) -> dict[str, Any]:
    """The tool call a pick stands for (the service always the alert's)."""
    if pick.tool == "search_log":
        return {"tool": "search_log", "args": {"service": service, "pattern": pick.pattern}}
    if pick.tool == "service_status":
        return {"tool": "service_status", "args": {"service": service}}
    return {"tool": "disk_usage", "args": {}}


def runbook_call(runbook: dict[str, Any], evidence: list[dict[str, Any]], service: str) -> Any:
    """The runbook's first check not run yet, as a tool call (None: all of them ran)."""
    ran = {e["tool"] for e in evidence if e["ok"]}
    for name in str(runbook.get("checks") or ",".join(DIAGNOSTICS)).split(","):
        if name in DIAGNOSTICS and name not in ran:
            pattern = "pool exhausted|timeout|error" if name == "search_log" else ""
            return call_of(NextCheck(tool=name, pattern=pattern), service)  # type: ignore[arg-type]
    return None


def choose(
    pick: NextCheck | None,
    runbook: dict[str, Any],
    evidence: list[dict[str, Any]],
    service: str,
) -> tuple[dict[str, Any] | None, str]:
    """The next call (None: conclude) and who chose it: the model's pick when it is usable,
    else the runbook's next check."""
    if pick is not None and pick.tool != "done":
        if pick.tool == "search_log" and not pick.pattern.strip():
            pick = None  # a log search needs a pattern
        else:
            call = call_of(pick, service)
            if all((e["tool"], e["args"]) != (call["tool"], call["args"]) for e in evidence):
                return call, "model"
    fallback = runbook_call(runbook, evidence, service)
    if pick is not None and pick.tool == "done":
        # done is accepted once the runbook's checks ran; until then the runbook goes on
        return fallback, "runbook" if fallback else "model"
    return fallback, "runbook"
