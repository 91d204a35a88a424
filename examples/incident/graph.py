"""The incident-triage workflow: a durable, budgeted, governed graph.

    intake -> recall_runbook -> plan <-> diagnose -> conclude <-> validate
           -> remediate (approval) -> verify -> report

The graph, not the model, holds the safety properties: the service comes from the alert, the
diagnostics are read-only code in the sandbox, the plan is bounded (``MAX_DIAGNOSTICS``, and the
run's budget around everything), a diagnosis must pass the evidence validator before any
remediation is tried, and the remediation is a write tool the policy escalates to the on-call
lead every time. A poor model answer changes the words, or stops short of a remediation;
it never restarts anything by itself.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, RunContext, add, append
from tether.agents.reflection import run_validator
from tether.core.errors import InvalidInputError, StructuredOutputError
from tether.core.messages import Message
from tether.governance import ApprovalRule, Budget, Governance, PolicySet, Rule
from tether.graph.builder import Workflow
from tether.llm.structured import generate_structured

from .diagnosis import (
    DIAGNOSIS_SYSTEM,
    MAX_ROUNDS,
    Diagnosis,
    answer_schema,
    diagnosis_prompt,
    evidence_validator,
)
from .plan import MAX_DIAGNOSTICS, PLAN_SYSTEM, NextCheck, choose, plan_prompt
from .tools import DIAGNOSTICS, REMEDIATION, as_text

WORKFLOW = "incident_triage"
TENANT = "acme-ops"
APPROVER_ROLE = "oncall-lead"
NO_RUNBOOK = {"runbook": "none", "text": "no runbook found", "remediation": "none"}

BUDGET: dict[str, float] = {"model_calls": 24, "tool_calls": 16, "steps": 40, "tokens": 60_000}
"""The run's envelope: a model that keeps planning, or keeps failing the validator, is stopped
here at the latest (the run parks ESCALATED with its state kept; raise a limit to go on)."""


class Incident(TypedDict, total=False):
    alert: dict[str, Any]
    runbook: dict[str, Any]
    plan: Annotated[list[dict[str, Any]], append]
    evidence: Annotated[list[dict[str, Any]], append]
    next_call: dict[str, Any] | None
    bounded: bool
    """True when the plan's bound, not the planner, ended the diagnostics."""
    output: str
    """The last diagnosis the model wrote (JSON text)."""
    rounds: Annotated[int, add]
    problems: list[str]
    validated: bool
    diagnosis: dict[str, Any]
    remediation: dict[str, Any]
    after: dict[str, Any]
    report: str


async def intake(state: Incident, ctx: RunContext) -> dict[str, Any]:
    alert = state.get("alert") or {}
    missing = [k for k in ("id", "service", "host", "summary") if not alert.get(k)]
    if missing:
        raise InvalidInputError(
            f"the alert lacks {missing}; give {{'alert': {{'id', 'service', 'host', 'summary'}}}}"
        )
    ctx.emit("alert", {k: alert[k] for k in ("id", "service", "host", "summary")})
    return {}


async def recall_runbook(state: Incident, ctx: RunContext) -> dict[str, Any]:
    alert = state["alert"]
    query = f"{alert['summary']} on service {alert['service']}"
    res = await ctx.deps["tools"].call("recall", {"query": query, "k": 1}, ctx=ctx)
    hits = res.unwrap()
    if not hits:
        return {"runbook": NO_RUNBOOK}
    meta = hits[0]["metadata"]
    runbook = {**meta, "text": hits[0]["text"], "score": hits[0]["score"]}
    ctx.emit("runbook", {"runbook": meta.get("runbook"), "score": hits[0]["score"]})
    return {"runbook": runbook}


async def plan(state: Incident, ctx: RunContext) -> dict[str, Any]:
    alert, runbook, evidence = state["alert"], state["runbook"], state.get("evidence", [])
    if len(evidence) >= MAX_DIAGNOSTICS:
        ctx.emit("plan_bound", {"diagnostics": len(evidence), "bound": MAX_DIAGNOSTICS})
        return {"next_call": None, "bounded": True}
    pick: NextCheck | None = None
    try:
        found = await generate_structured(
            ctx.deps["model"],
            [Message.system(PLAN_SYSTEM), Message.user(plan_prompt(alert, runbook, evidence))],
            NextCheck,
            max_repairs=1,
            max_tokens=120,
            temperature=0.0,
        )
        pick = found.value
    except StructuredOutputError:
        pass  # an unusable answer: the runbook's next check instead
    call, by = choose(pick, runbook, evidence, alert["service"])
    why = " ".join(pick.why.split())[:160] if pick else ""
    entry = {"round": len(evidence) + 1, "call": call, "by": by, "why": why}
    ctx.emit("plan", entry)
    return {"next_call": call, "plan": [entry]}


async def diagnose(state: Incident, ctx: RunContext) -> dict[str, Any]:
    call = state["next_call"]
    assert call is not None and call["tool"] in DIAGNOSTICS
    res = await ctx.deps["tools"].call(call["tool"], call["args"], ctx=ctx)
    output = as_text(call["tool"], res.unwrap()) if res.error is None else str(res.error)
    item = {
        "id": f"E{len(state.get('evidence', [])) + 1}",
        "tool": call["tool"],
        "args": call["args"],
        "ok": res.error is None,
        "output": output[:900],
    }
    ctx.emit("evidence", {k: item[k] for k in ("id", "tool", "ok")})
    return {"evidence": [item], "next_call": None}


async def conclude(state: Incident, ctx: RunContext) -> dict[str, Any]:
    prompt = diagnosis_prompt(
        state["alert"], state["runbook"], state.get("evidence", []), state.get("problems", [])
    )
    try:
        found = await generate_structured(
            ctx.deps["model"],
            [Message.system(DIAGNOSIS_SYSTEM), Message.user(prompt)],
            answer_schema(state.get("evidence", [])),
            max_repairs=1,
            max_tokens=160,
            temperature=0.0,
        )
        output = found.value.model_dump_json()
    except StructuredOutputError as exc:
        output = exc.last_output  # the validator says what is wrong with it
    return {"output": output, "rounds": 1}


async def validate(state: Incident, ctx: RunContext) -> dict[str, Any]:
    check = evidence_validator(state.get("evidence", []), state["runbook"])
    problems = await run_validator(check, state.get("output", ""))
    ctx.emit("validation", {"round": state.get("rounds", 0), "problems": problems})
    update: dict[str, Any] = {"problems": problems, "validated": not problems}
    if not problems:
        update["diagnosis"] = Diagnosis.model_validate_json(state["output"]).model_dump()
    return update


def after_validate(state: Incident) -> str:
    if state.get("validated"):
        wants = state["diagnosis"]["remediation"] == REMEDIATION
        return "remediate" if wants else "report"
    return "conclude" if state.get("rounds", 0) < MAX_ROUNDS else "report"


async def remediate(state: Incident, ctx: RunContext) -> dict[str, Any]:
    alert = state["alert"]
    args = {"service": alert["service"], "incident": alert["id"]}
    res = await ctx.deps["tools"].call(REMEDIATION, args, ctx=ctx)
    if res.error is not None:  # the on-call lead declined (or the restart failed)
        return {"remediation": {"status": "not done", "why": str(res.error)}}
    return {"remediation": {"status": "done", **res.unwrap()}}


async def verify(state: Incident, ctx: RunContext) -> dict[str, Any]:
    args = {"service": state["alert"]["service"]}
    res = await ctx.deps["tools"].call("service_status", args, ctx=ctx)
    return {"after": res.unwrap() if res.error is None else {"error": str(res.error)}}


async def report(state: Incident, ctx: RunContext) -> dict[str, Any]:
    alert, d = state["alert"], state.get("diagnosis")
    lines = [f"{alert['id']} {alert['service']}@{alert['host']}: {alert['summary']}"]
    if d is None:
        lines.append(
            f"no validated diagnosis after {state.get('rounds', 0)} round(s) "
            f"({'; '.join(state.get('problems', []))}): handed to the on-call engineer"
        )
    else:
        lines.append(f"cause: {d['cause']} (evidence {', '.join(d['evidence'])})")
        lines.append(f"quote: {d['quote']!r}")
    rem = state.get("remediation")
    if rem:
        lines.append(f"remediation {REMEDIATION}: {rem['status']}")
    if state.get("after"):
        after = state["after"]
        lines.append(f"after: {after.get('state')}, db pool {after.get('db_pool_in_use')}")
    return {"report": "\n".join(lines)}


def build_workflow(budget: Budget | None = None) -> Workflow:
    g = Graph(Incident, name=WORKFLOW)
    g.add_node("intake", intake, phase="planner")
    g.add_node("recall_runbook", recall_runbook, phase="planner")
    g.add_node("plan", plan, phase="planner")
    g.add_node("diagnose", diagnose, phase="tool")
    g.add_node("conclude", conclude, phase="agent")
    g.add_node("validate", validate, phase="validator")
    g.add_node("remediate", remediate, phase="tool")
    g.add_node("verify", verify, phase="tool")
    g.add_node("report", report, phase="validator")
    g.add_edge(START, "intake").add_edge("intake", "recall_runbook")
    g.add_edge("recall_runbook", "plan")
    g.add_conditional_edges(
        "plan", lambda s: "diagnose" if s.get("next_call") else "conclude", ["diagnose", "conclude"]
    )
    g.add_edge("diagnose", "plan").add_edge("conclude", "validate")
    g.add_conditional_edges("validate", after_validate, ["conclude", "remediate", "report"])
    g.add_conditional_edges(
        "remediate",
        lambda s: "verify" if s["remediation"]["status"] == "done" else "report",
        ["verify", "report"],
    )
    g.add_edge("verify", "report").add_edge("report", END)
    policies = PolicySet(
        [
            Rule(
                "remediation-needs-oncall-lead",
                "escalate",
                scope=["write", "destructive"],
                reason="a remediation changes production: the on-call lead approves it",
                approval=ApprovalRule(roles=(APPROVER_ROLE,)),
            )
        ]
    )
    governance = Governance(policies=policies, budget=budget or Budget(**BUDGET))
    return g.compile(governance=governance)
