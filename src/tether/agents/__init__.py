"""Agent patterns: ReAct, ReWOO, supervisor, fork-join of child runs, blackboard, reflection,
governance board, semantic router — each a compiled workflow, durable, budgeted and governed
like any run."""

from tether.agents.fork_join import ForkJoinOptions, ForkJoinState, fork_join, fork_join_node
from tether.agents.react import ReactOptions, ReactState, react_agent
from tether.agents.rewoo import RewooOptions, RewooState, rewoo_agent
from tether.agents.rewoo_plan import Plan, PlanStep
from tether.agents.spend import Savings, savings

__all__ = [
    "ForkJoinOptions",
    "ForkJoinState",
    "Plan",
    "PlanStep",
    "ReactOptions",
    "ReactState",
    "RewooOptions",
    "RewooState",
    "Savings",
    "fork_join",
    "fork_join_node",
    "react_agent",
    "rewoo_agent",
    "savings",
]
