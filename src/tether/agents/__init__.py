"""Agent patterns: ReAct, ReWOO, supervisor, fork-join of child runs, blackboard, reflection,
governance board, semantic router — each a compiled workflow, durable, budgeted and governed
like any run."""

from tether.agents.blackboard import (
    BlackboardOptions,
    BlackboardState,
    KnowledgeSource,
    blackboard,
)
from tether.agents.board import BoardOptions, BoardState, Ruling, governance_board
from tether.agents.fork_join import ForkJoinOptions, ForkJoinState, fork_join, fork_join_node
from tether.agents.react import ReactOptions, ReactState, react_agent
from tether.agents.reflection import (
    Judgement,
    ReflectionOptions,
    ReflectionState,
    Validator,
    reflection_agent,
)
from tether.agents.rewoo import RewooOptions, RewooState, rewoo_agent
from tether.agents.rewoo_plan import Plan, PlanStep
from tether.agents.router import RouterOptions, RouterState, semantic_router
from tether.agents.spend import Savings, savings
from tether.agents.supervisor import (
    Specialist,
    SupervisorOptions,
    SupervisorState,
    supervisor_agent,
)
from tether.agents.supervisor_plan import Assignment, Assignments

__all__ = [
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
