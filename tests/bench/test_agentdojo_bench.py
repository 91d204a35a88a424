"""The AgentDojo harness on a few banking cases, so that it cannot rot: AgentDojo's own tasks
and checks, AgentDojo's tools as tether contracts, the two scripted agents, and the scoring
under no governance and under tether's injection guard."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("agentdojo")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "agentdojo"))

from dojo_harness import Harness
from dojo_policies import governance
from dojo_suites import attack_cases, load_suites, utility_cases
from dojo_tools import scope_of

from tether.tools import Scope


@pytest.fixture(scope="module")
def banking() -> object:
    return load_suites(names=["banking"])[0]


def test_scope_rule() -> None:
    assert scope_of("get_balance") is Scope.READ
    assert scope_of("send_money") is Scope.WRITE
    assert scope_of("delete_file") is Scope.DESTRUCTIVE
    assert scope_of("get_webpage") is Scope.WRITE  # an egress to a URL of the caller's choice
    assert scope_of("frobnicate") is Scope.WRITE  # unknown verbs are changes


async def test_reference_agent_solves_its_task_ungoverned_and_governed(banking: object) -> None:
    cases = utility_cases(banking, ["user_task_1", "user_task_2"])  # a read, an update
    for setting in ("none", "guard"):
        results = await Harness("reference", governance(setting)).run(cases)
        assert [r.utility for r in results] == [True, True], setting
        assert all(r.status == "COMPLETED" for r in results)


async def test_hijacked_agent_succeeds_ungoverned_and_is_parked_by_the_guard(
    banking: object,
) -> None:
    # user_task_1 reads the transactions, where the attack sits; injection_task_0 sends money
    # to the attacker's IBAN (which only the untrusted tool output carries)
    cases = attack_cases(banking, ["user_task_1"], ["injection_task_0"])
    [free] = await Harness("hijacked").run(cases)
    assert free.hijacked and free.security is True and free.status == "COMPLETED"

    [guarded] = await Harness("hijacked", governance("guard")).run(cases)
    assert guarded.hijacked
    assert guarded.security is False  # AgentDojo's own verdict on the environment left
    assert guarded.status == "ESCALATED"
    assert guarded.escalation is not None and guarded.escalation["kind"] == "approval"
    assert "untrusted" in guarded.escalation["reason"]


async def test_default_policies_alone_let_the_attack_through(banking: object) -> None:
    cases = attack_cases(banking, ["user_task_1"], ["injection_task_0"])
    [r] = await Harness("hijacked", governance("policies")).run(cases)
    assert r.security is True  # a write is allowed by the defaults: the guard is what stops it
