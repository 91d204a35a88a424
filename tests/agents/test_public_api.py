"""The public surface of ``tether.agents``: pinned and importable; every factory returns a
compiled Workflow."""

from __future__ import annotations

import tether.agents as agents
from tether import Workflow

EXPECTED = sorted(
    [
        "Assignment",
        "Assignments",
        "BlackboardOptions",
        "BlackboardState",
        "BoardOptions",
        "BoardState",
        "ForkJoinOptions",
        "ForkJoinState",
        "Judgement",
        "KnowledgeSource",
        "Plan",
        "PlanStep",
        "ReactOptions",
        "ReactState",
        "ReflectionOptions",
        "ReflectionState",
        "RewooOptions",
        "RewooState",
        "RouterOptions",
        "RouterState",
        "Ruling",
        "Savings",
        "Specialist",
        "SupervisorOptions",
        "SupervisorState",
        "Validator",
        "blackboard",
        "fork_join",
        "fork_join_node",
        "governance_board",
        "react_agent",
        "reflection_agent",
        "rewoo_agent",
        "savings",
        "semantic_router",
        "supervisor_agent",
    ]
)


def test_all_is_pinned() -> None:
    assert sorted(agents.__all__) == EXPECTED
    assert len(agents.__all__) == len(set(agents.__all__))


def test_every_name_is_importable() -> None:
    for name in EXPECTED:
        ns: dict[str, object] = {}
        exec(f"from tether.agents import {name}", ns)
        assert ns[name] is getattr(agents, name)


def test_every_pattern_compiles_to_a_workflow() -> None:
    from tether.agents import (
        BlackboardOptions,
        BoardOptions,
        ForkJoinOptions,
        KnowledgeSource,
        ReactOptions,
        ReflectionOptions,
        RewooOptions,
        RouterOptions,
        Specialist,
        SupervisorOptions,
    )
    from tether.llm import HashingEmbedder, ScriptedModel
    from tether.tools import ToolExecutor

    m = ScriptedModel([])
    built = [
        agents.react_agent(ReactOptions(model=m, tools=ToolExecutor([]))),
        agents.rewoo_agent(RewooOptions(planner=m, solver=m, tools=ToolExecutor([]))),
        agents.reflection_agent(ReflectionOptions(generator=m, judge=m)),
        agents.supervisor_agent(
            SupervisorOptions(supervisor=m, specialists={"a": Specialist(m, "does a")})
        ),
        agents.blackboard(
            BlackboardOptions([KnowledgeSource("s", ("k",), lambda b: {})], goal=bool)
        ),
        agents.governance_board(
            BoardOptions(proposer=m, advocate=m, chair=m, compliance=lambda p: [])
        ),
        agents.semantic_router(
            RouterOptions(
                routes={"a": ["hello"]},
                specialists={"a": lambda s: {}, "fallback": lambda s: {}},
                embedder=HashingEmbedder(),
            )
        ),
    ]
    built.append(agents.fork_join(ForkJoinOptions(branch=built[0])))
    assert all(isinstance(wf, Workflow) for wf in built)
    assert len({wf.name for wf in built}) == len(built)
