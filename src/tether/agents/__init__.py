"""Agent patterns: ReAct, ReWOO, supervisor, fork-join of child runs, blackboard, reflection,
governance board, semantic router — each a compiled workflow, durable, budgeted and governed
like any run."""

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

__all__ = [
    "ForkJoinOptions",
    "ForkJoinState",
    "Judgement",
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
    "Savings",
    "Validator",
    "fork_join",
    "fork_join_node",
    "react_agent",
    "reflection_agent",
    "rewoo_agent",
    "savings",
    "semantic_router",
]
