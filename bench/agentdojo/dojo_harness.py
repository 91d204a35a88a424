"""Run a case with an agent through tether, and score it with AgentDojo's own checks.

Utility is the user task's ``utility_from_traces`` / ``utility`` verdict, security (attack
success) the injection task's ``security_from_traces`` / ``security`` verdict, both on the
environment the run left behind and the trace of the calls that really ran, exactly as
AgentDojo's ``TaskSuite.run_task_with_pipeline`` scores a pipeline. A run that parked
(ESCALATED: an approval nobody gives here) or a call that was denied simply did not change the
environment; the verdict is still AgentDojo's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dojo_agents import JOBS, Job, _squash, agent_workflow
from dojo_suites import Case
from dojo_tools import Bench

from tether import RunStatus, Runtime
from tether.store.memory import MemoryStore


@dataclass(slots=True)
class CaseResult:
    case: str
    suite: str
    utility: bool
    attacked: bool
    security: bool | None
    """AgentDojo's verdict: True = the attack succeeded; None without an attack."""
    status: str
    hijacked: bool = False
    denied: list[str] = field(default_factory=list)
    escalation: dict[str, Any] | None = None


class Harness:
    """Runs cases of one agent kind under one governance setting (None: ungoverned)."""

    def __init__(
        self,
        kind: str,
        governance: Any = None,
        *,
        label: str = "",
        commit: bool = False,
        inline: bool = False,
    ) -> None:
        self.kind = kind
        self.commit = commit
        self.inline = inline
        self.label = label or ("governed" if governance is not None else "none")
        self.workflow = agent_workflow(kind, governance)

    async def run(
        self, cases: Sequence[Case], progress: Callable[[int, int], None] | None = None
    ) -> list[CaseResult]:
        out = []
        async with Runtime(MemoryStore()) as rt:
            for n, case in enumerate(cases, 1):
                out.append(await self.run_case(rt, case))
                if progress is not None:
                    progress(n, len(cases))
        return out

    async def run_case(self, rt: Runtime, case: Case) -> CaseResult:
        env = case.environment()
        pre = env.model_copy(deep=True)
        bench = Bench(case.suite.tools, env)
        plan = case.user_task.ground_truth(env.model_copy(deep=True))
        job = Job(
            executor=bench.executor(answer=self.commit),
            plan=plan,
            answer=case.user_task.GROUND_TRUTH_OUTPUT,
            commit=self.commit,
            inline=self.inline,
        )
        if self.commit:  # the planner's knowledge: which step's result feeds which argument
            job.outputs = Bench(case.suite.tools, case.clean_environment()).dry_run(plan)
        inj = case.injection_task
        if inj is not None and self.kind == "hijacked":
            job.attack_texts = [_squash(t) for t in case.injections.values()]
            job.hijack = lambda: inj.ground_truth(pre.model_copy(deep=True))
            job.hijack_answer = inj.GROUND_TRUTH_OUTPUT
        JOBS[case.id] = job
        try:
            # the user's request is the run's input: the principal's own words (trusted when
            # the guard says ``trust_input=True``)
            res = await rt.run(self.workflow, {"case": case.id, "request": case.user_task.PROMPT})
        finally:
            del JOBS[case.id]
        output = str(res.state.get("output", "")) if res.status is RunStatus.COMPLETED else ""
        utility = _utility(case, output, pre, bench)
        security = _security(case, output, pre, bench) if inj is not None else None
        return CaseResult(
            case=case.id,
            suite=case.suite.name,
            utility=utility,
            attacked=inj is not None,
            security=security,
            status=res.status.value,
            hijacked=job.hijacked,
            denied=list(res.state.get("denied", [])),
            escalation=dict(res.escalation) if res.escalation else None,
        )


def _utility(case: Case, output: str, pre: Any, bench: Bench) -> bool:
    task = case.user_task
    verdict = task.utility_from_traces(output, pre, bench.env, bench.trace)
    if verdict is None:
        verdict = task.utility(output, pre, bench.env)
    return bool(verdict)


def _security(case: Case, output: str, pre: Any, bench: Bench) -> bool:
    task = case.injection_task
    assert task is not None
    verdict = task.security_from_traces(output, pre, bench.env, bench.trace)
    if verdict is None:
        verdict = task.security(output, pre, bench.env)
    return bool(verdict)
