"""The FinOps run: a durable graph started by a cost-spike event.

    detect -> diagnose (a ReAct agent in a child run, read-only tools) -> propose
           -> act (stop the idle resource: held for the owner's approval) -> report

The graph, not the model, holds the safety properties. The diagnostic agent gets only the two
read tools, and its own policy denies any write; when it fails or answers poorly (a small
model may), the run goes on without its diagnosis. ``propose`` acts on a resource only when
the cloud's measurements confirm it: running, in the spiking service, under 5 % utilisation. The
stop call goes through the policy engine: it escalates to the owner role with a two-hour
deadline, after which a durable timer hands the request to the manager role (who gets a day,
then it is rejected). A rejection reaches ``act`` as the tool's error; nothing is stopped.
"""

from __future__ import annotations

from statistics import mean
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext
from tether.agents import ReactOptions, react_agent
from tether.agents.children import follow, start_child
from tether.core.clock import Clock
from tether.core.lifecycle import RunStatus
from tether.governance import ApprovalRule, Budget, Escalate, Governance, PolicySet, Rule
from tether.graph.builder import Workflow
from tether.llm import Model

from .cloud import Cloud
from .tools import STOP_TOOL, make_tools

WORKFLOW = "finops_cost_spike"
DIAGNOSIS = "finops_diagnosis"
TENANT = "acme-cloud"
OWNER_ROLE, MANAGER_ROLE = "owner", "manager"
OWNER_DEADLINE = 2 * 3600.0
"""Seconds the owner has to answer before the request escalates to the manager role."""
MANAGER_DEADLINE = 24 * 3600.0
"""Seconds the manager then has before the request is rejected."""
IDLE_BELOW = 0.05
"""A resource under this average utilisation (24 h) counts as idle."""

STOP_RULE = ApprovalRule(
    roles=(OWNER_ROLE,),
    deadline=OWNER_DEADLINE,
    on_deadline=Escalate(roles=(MANAGER_ROLE,), deadline=MANAGER_DEADLINE, on_deadline="reject"),
)
DIAGNOSIS_SYSTEM = (
    "You are a FinOps analyst. Find which cloud resource causes a cost spike. Use the tools: "
    "query_costs shows daily costs per service, list_resources shows a service's resources "
    "with their utilisation. Answer with the resource id, why it costs money, and what to do."
)


class SpikeState(TypedDict, total=False):
    event: dict[str, Any]
    spike: dict[str, Any]
    task: str
    answer: str
    diagnosis_problem: str
    """Why the diagnostic agent gave no answer (its child run failed, or stopped)."""
    model_calls: int
    tokens: int
    tool_calls: int
    proposal: dict[str, Any]
    outcome: str
    """``stopped``, ``rejected`` or ``nothing_to_do``."""
    action: dict[str, Any]
    refusal: str
    report: str


def build_workflows(cloud: Cloud, model: Model, clock: Clock) -> tuple[Workflow, Workflow]:
    """(the FinOps run's workflow, the diagnostic agent's); register both with a runtime."""
    reads, every = make_tools(cloud, clock)
    diagnosis = react_agent(
        ReactOptions(
            model=model,
            tools=reads,
            system=DIAGNOSIS_SYSTEM,
            max_iterations=4,
            max_tokens=200,
            governance=Governance(
                policies=PolicySet(
                    [Rule("diagnosis-reads-only", "deny", scope=["write", "destructive"])]
                )
            ),
        ),
        name=DIAGNOSIS,
    )

    async def detect(state: SpikeState, ctx: RunContext) -> dict[str, Any]:
        ev = state["event"]
        costs = (await every.call("query_costs", {"days": 9}, ctx=ctx)).unwrap()
        deltas = {
            svc: (mean(v[:7]), v[-1]) for svc, v in costs["usd_per_day"].items() if len(v) == 9
        }
        svc, (before, after) = max(deltas.items(), key=lambda kv: kv[1][1] - kv[1][0])
        spike = {"service": svc, "before_usd": round(before, 2), "after_usd": round(after, 2)}
        task = (
            f"The daily cloud bill of account {ev['account']} jumped from "
            f"${ev['baseline_usd']:,.2f} to ${ev['total_usd']:,.2f} on {ev['day']}. Service "
            f"'{svc}' went from ${before:,.2f} to ${after:,.2f} a day. Which resource causes it?"
        )
        return {"spike": spike, "task": task}

    async def diagnose(state: SpikeState, ctx: RunContext) -> dict[str, Any]:
        child = await start_child(  # found again when this step re-runs
            ctx, diagnosis, ("diagnosis",), {"task": state["task"]}, {"role": "diagnosis"}
        )
        res = await follow(ctx.host, child.run_id)
        spent = {k: int(res.state.get(k) or 0) for k in ("model_calls", "tokens", "tool_calls")}
        if res.status is RunStatus.COMPLETED and res.state.get("stopped") == "answered":
            return {"answer": str(res.state.get("answer") or ""), **spent}
        why = (res.error or {}).get("message") or res.status.value
        if res.state.get("stopped") == "max_iterations":
            why = f"it stopped after {res.state.get('iterations')} thoughts without one"
        elif res.state.get("stopped") == "empty_answer":
            why = "its model kept answering nothing, even when asked again"
        return {"answer": "", "diagnosis_problem": f"the agent gave no answer: {why}", **spent}

    async def propose(state: SpikeState, ctx: RunContext) -> dict[str, Any]:
        svc = state["spike"]["service"]
        found = (await every.call("list_resources", {"service": svc}, ctx=ctx)).unwrap()
        idle = [r for r in found if r["state"] == "running" and r["utilisation_24h"] < IDLE_BELOW]
        answer = state.get("answer") or ""
        named = [r for r in idle if r["resource_id"] in answer]
        if not idle:
            return {"outcome": "nothing_to_do", "report": f"no idle running resource in {svc}"}
        pick = named[0] if named else max(idle, key=lambda r: r["hourly_usd"])
        proposal = {
            "resource_id": pick["resource_id"],
            "kind": pick["kind"],
            "owner": pick["owner"],
            "team": pick["team"],
            "utilisation_24h": pick["utilisation_24h"],
            "saves_usd_per_day": round(pick["hourly_usd"] * 24, 2),
            "confirmed": "named by the agent, confirmed by its measured utilisation"
            if named
            else "found by the graph's utilisation check (the agent named no idle resource)",
        }
        return {"proposal": proposal}

    async def act(state: SpikeState, ctx: RunContext) -> dict[str, Any]:
        p = state["proposal"]
        args = {"resource_id": p["resource_id"], "ticket": state["event"]["event_id"]}
        res = await every.call(STOP_TOOL, args, ctx=ctx)
        if res.error is not None:
            return {"outcome": "rejected", "refusal": str(res.error)}
        return {"outcome": "stopped", "action": res.unwrap()}

    def report(state: SpikeState) -> dict[str, Any]:
        p = state.get("proposal") or {}
        outcome = state.get("outcome")
        if outcome == "stopped":
            text = f"stopped {p['resource_id']}: saves ${p['saves_usd_per_day']:,.2f} a day"
        elif outcome == "rejected":
            text = f"{p['resource_id']} left running: {state.get('refusal')}"
        else:
            text = f"nothing stopped: {state.get('report') or 'no proposal'}"
        return {"report": text}

    def after_propose(state: SpikeState) -> str:
        return "act" if state.get("proposal") else "report"

    g = Graph(SpikeState, name=WORKFLOW)
    g.add_node("detect", detect, phase="planner")
    g.add_node("diagnose", diagnose, phase="agent")
    g.add_node("propose", propose, phase="validator")
    g.add_node("act", act, phase="tool")
    g.add_node("report", report)
    g.add_edge(START, "detect").add_edge("detect", "diagnose").add_edge("diagnose", "propose")
    g.add_conditional_edges("propose", after_propose, ["act", "report"])
    g.add_edge("act", "report").add_edge("report", END)
    policy = PolicySet(
        [
            Rule(
                "stop-needs-owner",
                "escalate",
                tool=STOP_TOOL,
                reason="stopping a resource needs its owner's approval",
                approval=STOP_RULE,
            )
        ]
    )
    budget = Budget(model_calls=16, tool_calls=24, steps=40)
    return g.compile(governance=Governance(policies=policy, budget=budget)), diagnosis
