"""AgentDojo's tools as tether ``ToolContract``s, run by a ``ToolExecutor``.

Each AgentDojo ``Function`` becomes a contract whose arguments are AgentDojo's own schema and
whose body runs the function on the case's environment through AgentDojo's
``FunctionsRuntime`` (the same dependency injection and validation AgentDojo uses). The
result is what AgentDojo shows a model: ``tool_result_to_str`` (YAML). Every executed call is
appended to the case's trace, which AgentDojo's ``*_from_traces`` checks read: a call a
policy denied or parked never ran, so it is not in the trace.

Scope rule (by name, then by effect), documented in ``bench/README.md``:

* ``delete_*``, ``cancel_*``, ``remove_*`` -> destructive (they destroy something);
* ``get_*``, ``search_*``, ``list_*``, ``read_*``, ``check_*`` -> read;
* everything else (``send_*``, ``create_*``, ``update_*``, ``append_*``, ``share_*``,
  ``reschedule_*``, ``add_*``, ``reserve_*``, ``schedule_*``, ``invite_*``, ``post_*``, and any
  unknown prefix) -> write: an unknown verb is treated as a change, never as a read;
* override by effect: ``get_webpage`` fetches a URL of the caller's choosing, an egress to a
  third party (AgentDojo records every fetch in ``web.web_requests``; slack attacks use it to
  reach the attacker's site): write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
from agentdojo.functions_runtime import Function, FunctionCall, FunctionsRuntime, TaskEnvironment
from dojo_planner import ANSWER
from pydantic import BaseModel

from tether.tools import Scope, ToolContract, ToolExecutor

DESTRUCTIVE_PREFIXES = ("delete_", "cancel_", "remove_")
READ_PREFIXES = ("get_", "search_", "list_", "read_", "check_")
EGRESS_READS = frozenset({"get_webpage"})


def scope_of(name: str) -> Scope:
    """The scope of an AgentDojo tool, by the rule in the module docstring."""
    if name.startswith(DESTRUCTIVE_PREFIXES):
        return Scope.DESTRUCTIVE
    if name in EGRESS_READS:
        return Scope.WRITE
    if name.startswith(READ_PREFIXES):
        return Scope.READ
    return Scope.WRITE


class _AnswerArgs(BaseModel):
    text: str


class DojoToolError(Exception):
    """An AgentDojo tool failed (AgentDojo's runtime reported ``Type: message``)."""


class Bench:
    """One case's tools: the environment they act on and the calls that ran."""

    def __init__(self, functions: Iterable[Function[Any, Any]], env: TaskEnvironment) -> None:
        self.functions = list(functions)
        self.env = env
        self.runtime = FunctionsRuntime(self.functions)
        self.trace: list[FunctionCall] = []
        self.answers: list[str] = []

    def contracts(self) -> list[ToolContract]:
        return [self._contract(f) for f in self.functions]

    def executor(self, answer: bool = False) -> ToolExecutor:
        """The case's tools; with ``answer``, also the ``answer`` tool a plan-then-act agent
        answers through (scope write: an answer is an egress to the user)."""
        return ToolExecutor(self.contracts() + ([self._answer()] if answer else []))

    def dry_run(self, calls: Iterable[FunctionCall]) -> list[str]:
        """What ``calls`` return run in order on this bench's environment (a copy: the
        planner's knowledge of which step feeds which argument)."""
        out = []
        for c in calls:
            result, error = self.runtime.run_function(self.env, c.function, dict(c.args))
            out.append(tool_result_to_str(result) if error is None else "")
        return out

    def _answer(self) -> ToolContract:
        async def run(text: str) -> str:
            self.answers.append(text)
            return "answered"

        return ToolContract(
            name=ANSWER,
            description="Give the user the answer.",
            fn=run,
            args_model=_AnswerArgs,
            scope=Scope.WRITE,
            idempotent=True,
            timeout=None,
            is_async=True,
            metadata={"source": "tether bench"},
        )

    def _contract(self, fn: Function[Any, Any]) -> ToolContract:
        name = fn.name

        async def run(**args: Any) -> str:
            self.trace.append(FunctionCall(function=name, args=dict(args)))
            result, error = self.runtime.run_function(self.env, name, args)
            if error is not None:
                raise DojoToolError(error)
            return tool_result_to_str(result)

        scope = scope_of(name)
        return ToolContract(
            name=name,
            description=fn.description,
            fn=run,
            args_model=fn.parameters,
            scope=scope,
            idempotent=scope is Scope.READ,
            timeout=None,
            is_async=True,
            metadata={"source": "agentdojo"},
        )
