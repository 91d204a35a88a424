"""Graph workflows: builder, state, planner, run loop and the Runtime."""

from tether.core.errors import RunParkedError
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext, interrupt
from tether.graph.results import RunHandle, RunResult, StepInfo
from tether.graph.runtime import Runtime
from tether.graph.state_fields import per_run
from tether.graph.types import END, START, Command, Phase, RetryPolicy, Send

__all__ = [
    "END",
    "START",
    "Command",
    "Graph",
    "Phase",
    "RetryPolicy",
    "RunContext",
    "RunHandle",
    "RunParkedError",
    "RunResult",
    "Runtime",
    "Send",
    "StepInfo",
    "Workflow",
    "interrupt",
    "per_run",
]
