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


async def test_plan_setting_keeps_the_work_the_guard_alone_parks(banking: object) -> None:
    """A task whose write takes its values from what it read (user_task_15: the landlord's
    standing order, the friend's refund) escalates under value provenance alone; an agent
    that commits its plan first finishes it (``2200`` planned, ``2200.0`` validated)."""
    cases = utility_cases(banking, ["user_task_15"])
    [alone] = await Harness("reference", governance("guard")).run(cases)
    [planned] = await Harness("reference", governance("plan"), commit=True).run(cases)
    assert (alone.utility, alone.status) == (False, "ESCALATED")
    assert (planned.utility, planned.status) == (True, "COMPLETED")


async def test_plan_setting_parks_off_plan_and_off_source_attacks(banking: object) -> None:
    # user_task_1 only reads: the injected payment is off-plan. user_task_0 pays the bill the
    # attack is written in: the injected payment fills the planned one, but its amount does
    # not come from the bill, where the plan says the amount comes from
    off = attack_cases(banking, ["user_task_1"], ["injection_task_0"])
    same = attack_cases(banking, ["user_task_0"], ["injection_task_0"])
    harness = Harness("hijacked", governance("plan"), commit=True)
    [parked] = await harness.run(off)
    [sourced] = await harness.run(same)
    for r in (parked, sourced):
        assert r.hijacked and r.security is False and r.status == "ESCALATED"
        assert r.escalation is not None
    assert parked.escalation is not None and sourced.escalation is not None
    assert "is not a step left in the plan" in parked.escalation["reason"]
    assert "does not come from plan step 0" in sourced.escalation["reason"]


def test_the_planner_writes_only_what_the_request_states() -> None:
    from dojo_planner import ANSWER, planned
    from dojo_tools import Bench

    from tether.governance import OPEN, Template

    [travel] = load_suites(names=["travel"])
    [case] = utility_cases(travel, ["user_task_7"])
    calls = case.user_task.ground_truth(case.environment())
    outputs = Bench(travel.tools, case.clean_environment()).dry_run(calls)
    steps = planned(calls, case.user_task.PROMPT, outputs, case.user_task.GROUND_TRUTH_OUTPUT)
    assert steps[0].args == {"city": "Paris"}  # stated: fixed
    assert steps[1].args["restaurant_names"] == OPEN.from_step(0)  # read in step 0
    event = steps[4].args
    assert event["title"] == Template("Dinner at {}")  # the request's words, a read name
    assert event["location"] == OPEN.from_step(3)  # the address step
    assert (steps[-1].tool, steps[-1].args["text"]) == (ANSWER, Template("{}"))
