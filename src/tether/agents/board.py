"""Governance board: a proposer drafts, a devil's advocate attacks the draft while a compliance
check tests it (the two in parallel), and a chair decides go / no-go with a rationale that is
recorded: in the state, as the run's ``rationale`` event (the mind log pairs it with the
decision), and in the ``board_decision`` event.

Compliance is a deterministic ``compliance(proposal)`` function returning violations, so the
graph, not a model, holds the line: with any violation the decision is ``no_go`` whatever the
chair says (the chair's own words are kept in ``chair_said``). The chair answers
``{"decision": "go"|"no_go", "rationale": "..."}``::

    wf = governance_board(BoardOptions(proposer=m, advocate=m, chair=m,
                                       compliance=lambda p: [] if "refund" in p else ["..."]))
    final = wf.invoke({"question": "Refund order #1234 twice?"})
    final["decision"], final["rationale"], final["violations"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel

from tether.agents.options import need_governance, need_model
from tether.agents.reflection import run_validator
from tether.agents.spend import spend
from tether.core.errors import ConfigurationError
from tether.core.governor import GovernanceConfig
from tether.core.messages import Message
from tether.core.reducers import add
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.state_fields import per_run
from tether.graph.types import END, START, Phase
from tether.llm.model import Model
from tether.llm.structured import generate_structured

Compliance = Callable[[str], Any]
"""``compliance(proposal)`` → list of violations (empty: compliant); may be async."""

PROPOSER = "Propose a concrete course of action for the question, with its expected benefit."
ADVOCATE = "You are the devil's advocate. List the strongest risks and objections to the proposal."
CHAIR = (
    "You chair the board. Weigh the proposal, the objections and the compliance findings, then "
    'answer a JSON object {"decision": "go" or "no_go", "rationale": "..."}.'
)


class Ruling(BaseModel):
    decision: Literal["go", "no_go"]
    rationale: str


class BoardState(TypedDict, total=False):
    question: str
    proposal: str
    objections: str
    violations: list[str]
    decision: str
    rationale: str
    chair_said: str
    model_calls: Annotated[int, add, per_run]
    tokens: Annotated[int, add, per_run]


@dataclass(frozen=True)
class BoardOptions:
    proposer: Model
    advocate: Model
    chair: Model
    compliance: Compliance
    proposer_system: str = PROPOSER
    advocate_system: str = ADVOCATE
    chair_system: str = CHAIR
    governance: GovernanceConfig | None = None

    def __post_init__(self) -> None:
        for role in ("proposer", "advocate", "chair"):
            need_model("BoardOptions", role, getattr(self, role))
        if not callable(self.compliance):
            raise ConfigurationError(
                "BoardOptions.compliance must be a function proposal -> list of violations"
            )
        need_governance("BoardOptions", self.governance)


def governance_board(options: BoardOptions, *, name: str = "governance_board") -> Workflow:
    """The board as a compiled workflow (input: ``{"question": ...}``)."""

    async def propose(state: BoardState, ctx: RunContext) -> dict[str, Any]:
        response = await options.proposer.chat(
            [Message.system(options.proposer_system), Message.user(state["question"])]
        )
        return {"proposal": response.text, **spend([response])}

    async def challenge(state: BoardState, ctx: RunContext) -> dict[str, Any]:
        prompt = f"Question: {state['question']}\n\nProposal:\n{state['proposal']}"
        response = await options.advocate.chat(
            [Message.system(options.advocate_system), Message.user(prompt)]
        )
        return {"objections": response.text, **spend([response])}

    async def comply(state: BoardState, ctx: RunContext) -> dict[str, Any]:
        return {"violations": await run_validator(options.compliance, state["proposal"])}

    async def decide(state: BoardState, ctx: RunContext) -> dict[str, Any]:
        violations = state.get("violations", [])
        findings = "\n".join(f"- {v}" for v in violations) or "none"
        prompt = (
            f"Question: {state['question']}\n\nProposal:\n{state['proposal']}\n\n"
            f"Objections:\n{state.get('objections', '')}\n\nCompliance violations:\n{findings}"
        )
        result = await generate_structured(
            options.chair, [Message.system(options.chair_system), Message.user(prompt)], Ruling
        )
        ruling = result.value
        decision, rationale = ruling.decision, ruling.rationale
        if violations and decision == "go":
            decision = "no_go"
            rationale = (
                "no_go: compliance failed (" + "; ".join(violations) + "); the chair's go "
                f"was overruled. Chair: {ruling.rationale}"
            )
        ctx.explain(rationale, decision=decision)
        ctx.emit("board_decision", {"decision": decision, "violations": violations})
        return {
            "decision": decision,
            "rationale": rationale,
            "chair_said": ruling.decision,
            **spend(a.response for a in result.attempts),
        }

    g = Graph(BoardState, name=name)
    g.add_node("propose", propose, phase=Phase.PLANNER)
    g.add_node("challenge", challenge)
    g.add_node("comply", comply, phase=Phase.VALIDATOR)
    g.add_node("decide", decide)
    g.add_edge(START, "propose")
    g.add_edge("propose", "challenge").add_edge("propose", "comply")
    g.add_edge(["challenge", "comply"], "decide")
    g.add_edge("decide", END)
    return g.compile(governance=options.governance)
