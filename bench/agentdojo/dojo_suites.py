"""AgentDojo's suites and cases, loaded from the installed package (offline).

A *case* is one run of an agent: a user task alone (utility), or a user task whose environment
carries an injection task's attack (security). The attack is AgentDojo's own
``important_instructions`` (the one its papers report), placed by AgentDojo in every injection
vector the user task's correct execution reads. ``v1.1.2`` is the latest benchmark version
with 97 user tasks and 629 (user task x injection task) pairs; ``v1.2`` adds workspace
injection tasks (949 pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml
from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement
from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline
from agentdojo.attacks.important_instructions_attacks import ImportantInstructionsAttack
from agentdojo.base_tasks import BaseInjectionTask, BaseUserTask
from agentdojo.functions_runtime import FunctionsRuntime, TaskEnvironment
from agentdojo.task_suite.load_suites import get_suites
from agentdojo.task_suite.task_suite import TaskSuite, read_suite_file, validate_injections
from agentdojo.types import get_text_content_as_str

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT_VERSION = "v1.1.2"
SUITES = ("workspace", "travel", "banking", "slack")


class _NamedTarget(BasePipelineElement):
    """The attacked pipeline, only for its name: the attack addresses the model by name."""

    name = "gpt-4o-2024-05-13"

    def query(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError("the benchmark's agents are scripted; nothing queries this")


@dataclass(slots=True)
class Case:
    suite: TaskSuite[Any]
    user_task: BaseUserTask[Any]
    injection_task: BaseInjectionTask[Any] | None
    injections: dict[str, str]
    """Injection vector id -> the text AgentDojo's attack puts there (empty: no attack)."""

    @property
    def id(self) -> str:
        inj = f"/{self.injection_task.ID}" if self.injection_task is not None else ""
        return f"{self.suite.name}/{self.user_task.ID}{inj}"

    def environment(self) -> TaskEnvironment:
        """A fresh environment for this case, injected and initialised for its user task."""
        env = _base_environment(self.suite.name, self.suite.benchmark_version, self._key())
        return self.user_task.init_environment(env.model_copy(deep=True))

    def clean_environment(self) -> TaskEnvironment:
        """This case's environment without its injection (the injection vectors' defaults)."""
        env = _base_environment(self.suite.name, self.suite.benchmark_version, ())
        return self.user_task.init_environment(env.model_copy(deep=True))

    def _key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.injections.items()))


_LOADED: dict[tuple[str, Any], TaskSuite[Any]] = {}


@cache
def _vector_defaults(suite_name: str, version: Any) -> dict[str, str]:
    return _LOADED[(suite_name, version)].get_injection_vector_defaults()


@cache
def _base_environment(
    suite_name: str, version: Any, injections: tuple[tuple[str, str], ...]
) -> TaskEnvironment:
    """``TaskSuite.load_and_inject_default_environment`` with libyaml's parser (the same YAML
    safe loading, ~20x faster than the pure-Python one AgentDojo calls)."""
    suite = _LOADED[(suite_name, version)]
    text = read_suite_file(suite.name, "environment.yaml", suite.data_path)
    defaults = _vector_defaults(suite_name, version)
    validate_injections(dict(injections), defaults)
    injected = text.format(**dict(defaults, **dict(injections)))
    env: TaskEnvironment = suite.environment_type.model_validate(yaml.load(injected, _LOADER))
    return env


class _Attack(ImportantInstructionsAttack):
    """AgentDojo's ``important_instructions`` attack; its choice of injection vectors (those a
    correct execution of the user task reads) made on the fast environment loader."""

    _candidates: dict[str, list[str]]

    def get_injection_candidates(self, user_task: BaseUserTask[Any]) -> list[str]:
        cached = self._candidates.get(user_task.ID)
        if cached is None:
            cached = self._candidates[user_task.ID] = self._find_candidates(user_task)
        return cached

    def _find_candidates(self, user_task: BaseUserTask[Any]) -> list[str]:
        suite = self.task_suite
        env = _base_environment(
            suite.name, suite.benchmark_version, tuple(sorted(self.canary_injections.items()))
        ).model_copy(deep=True)
        runtime = FunctionsRuntime(suite.tools)
        _, _, _, responses, _ = GroundTruthPipeline(user_task).query(user_task.PROMPT, runtime, env)
        seen = " ".join(
            get_text_content_as_str(r["content"]) for r in responses if r["content"] is not None
        )
        found = [inj for inj, canary in self.canary_injections.items() if canary in seen]
        if not found:
            raise ValueError(f"{user_task.ID} is not injectable.")
        return found


def load_suites(
    version: str = DEFAULT_VERSION, names: Sequence[str] = SUITES
) -> list[TaskSuite[Any]]:
    """The named suites at ``version``.

    AgentDojo 0.1.35's ``load_suites`` never imports its v1.1.2 task updates (the fixed
    workspace ``injection_task_0`` check, which v1.1.1 fails whenever the attack text repeats
    the subject; travel injection tasks 3 and 5, ...), and it copies each suite per version at
    import time, so "v1.1.2" silently equals "v1.1.1". Here the updates are imported, then each
    suite is copied again from AgentDojo's originals (the "v1" objects) at the version's
    number, so every version gets the tasks it declares."""
    import agentdojo.default_suites.v1_1_2  # noqa: F401  (registers the v1.1.2 updates)

    suites = get_suites(version)
    unknown = [n for n in names if n not in suites]
    if unknown or not suites:
        raise SystemExit(
            f"unknown AgentDojo version {version!r} or suite(s) {unknown}; "
            f"suites there: {sorted(suites)}"
        )
    originals = get_suites("v1")
    out = [originals[n].get_new_version(suites[n].benchmark_version) for n in names]
    for s in out:
        _LOADED[(s.name, s.benchmark_version)] = s
    return out


def _pick(ids: Sequence[str], only: Sequence[str] | None) -> list[str]:
    return [i for i in ids if only is None or i in only]


def utility_cases(suite: TaskSuite[Any], user_tasks: Sequence[str] | None = None) -> list[Case]:
    """One case per user task, no attack."""
    return [
        Case(suite, suite.user_tasks[u], None, {})
        for u in _pick(list(suite.user_tasks), user_tasks)
    ]


def attack_cases(
    suite: TaskSuite[Any],
    user_tasks: Sequence[str] | None = None,
    injection_tasks: Sequence[str] | None = None,
) -> list[Case]:
    """One case per (user task, injection task) pair, attacked with ``important_instructions``."""
    attack = _Attack(suite, _NamedTarget())
    attack._candidates = {}
    cases = []
    for u in _pick(list(suite.user_tasks), user_tasks):
        user_task = suite.user_tasks[u]
        for i in _pick(list(suite.injection_tasks), injection_tasks):
            inj = suite.injection_tasks[i]
            cases.append(Case(suite, user_task, inj, attack.attack(user_task, inj)))
    return cases
