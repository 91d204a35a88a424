"""examples/incident_triage.py: the incident-triage assistant, offline, with the scripted model.

Real parts throughout: the run on SQLite, the runbooks in the memory plane, the diagnostics in
the sandbox, the policy and signed approvals, the audit chain. The pause for approval is
continued from a fresh process, as a user would.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tether.governance import Approvals, Budget
from tether.governance.approvals_keys import load_private_key, sign
from tether.llm import FunctionModel
from tether.llm.types import ModelRequest
from tether.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "incident_triage.py"
sys.path.append(str(ROOT / "examples"))

from incident.diagnosis import evidence_validator  # noqa: E402
from incident.models import local_model_installed, scripted_reply  # noqa: E402
from incident.plan import MAX_DIAGNOSTICS  # noqa: E402
from incident.session import Options, Outcome, triage  # noqa: E402
from incident.world import Host  # noqa: E402

HANG = 600  # seconds: bounds a hang, never what a test measures
READS = ["recall", "search_log", "service_status", "disk_usage"]


def triage_in(tmp: Path, **kw: Any) -> tuple[Outcome, str]:
    out = io.StringIO()
    opts = Options(directory=tmp / "incident", **{"model": "scripted", **kw})
    outcome = asyncio.run(triage(opts, Console(file=out, width=200, no_color=True)))
    return outcome, out.getvalue()


def audit_data(outcome: Outcome) -> list[tuple[str, dict[str, Any]]]:
    return [(r.kind, json.loads(r.data_json)) for r in outcome.audit]


def nodes(outcome: Outcome) -> list[str]:
    return outcome.seen.nodes


def test_stages_run_in_order_and_the_restart_waits_for_the_approval(tmp_path: Path) -> None:
    paused, text = triage_in(tmp_path)
    assert paused.status.value == "ESCALATED"
    assert (paused.escalation or {}).get("kind") == "approval"
    diagnostics = ["plan", "diagnose"] * 3
    head = ["intake", "recall_runbook", *diagnostics, "plan", "conclude", "validate"]
    assert nodes(paused) == head  # remediate parked before finishing
    assert [e["call"] and e["call"]["tool"] for e in paused.state["plan"]] == [
        "search_log",
        "service_status",
        "disk_usage",
        None,
    ]
    # the read-only tools ran, unasked; the restart did not run
    assert [t for t, ok in paused.seen.tool_calls if ok] == READS
    assert "restart_service" not in [t for t, _ in paused.seen.tool_calls]
    assert paused.restarts == []
    decisions = [
        (d["tool"], d["action"], d["rule"]) for k, d in audit_data(paused) if k == "policy_decision"
    ]
    assert decisions == [
        *[(t, "allow", "default:read") for t in READS],
        ("restart_service", "escalate", "remediation-needs-oncall-lead"),
    ]
    assert [k for k, _ in audit_data(paused)][-1] == "approval.requested"
    assert "tether approvals approve" in text

    done, text = triage_in(tmp_path, auto_approve=True)
    assert done.run_id == paused.run_id and done.status.value == "COMPLETED"
    assert nodes(done)[-3:] == ["remediate", "verify", "report"]
    [restart] = done.restarts  # exactly one restart, requested exactly once
    assert (restart.service, restart.incident, restart.requests) == ("checkout", "INC-1042", 1)
    assert done.state["remediation"]["status"] == "done"
    assert done.state["after"]["state"] == "healthy"
    d = done.state["diagnosis"]
    assert d["remediation"] == "restart_service" and "E1" in d["evidence"]
    kinds = [k for k, _ in audit_data(done)]
    approved = kinds.index("approval.approve")
    assert kinds.index("approval.requested") < approved < kinds.index("approval.used")
    assert done.audit_ok and "chain verified" in text


def test_a_paused_run_is_approved_from_the_cli_and_continued_by_a_fresh_process(
    tmp_path: Path,
) -> None:
    d = tmp_path / "incident"
    base = [sys.executable, str(EXAMPLE), "--model", "scripted", "--dir", str(d)]
    first = _run(base, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "recalled runbook RB-7" in first.stdout
    assert Host(d).restarts() == []  # paused: nothing restarted
    line = next(ln for ln in first.stdout.splitlines() if "tether approvals approve" in ln)
    approve = shlex.split(line.strip())
    signed = _run([sys.executable, "-m", "tether.cli", *approve[1:]], tmp_path)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert Host(d).restarts() == []  # approving is not restarting: the run does that

    second = _run(base, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    out = second.stdout
    assert "continuing" in out and "COMPLETED" in out
    assert re.search(r"tool restart_service \(write\) ok", out)
    assert "chain verified" in out and "approval.used" in out
    assert "approved, signed by lead (oncall-lead)" in out
    assert "tool search_log" not in out  # the diagnostics are not run again
    [restart] = Host(d).restarts()
    assert restart.requests == 1


def test_a_model_that_keeps_planning_is_stopped_by_the_plan_bound(tmp_path: Path) -> None:
    done, text = triage_in(tmp_path, model=_keeps_planning(), auto_approve=True)
    assert done.status.value == "COMPLETED"
    assert done.state["bounded"] is True
    assert len(done.state["evidence"]) == MAX_DIAGNOSTICS
    assert [e["by"] for e in done.state["plan"]] == ["model"] * MAX_DIAGNOSTICS
    assert "plan bound reached" in text
    assert len(done.restarts) == 1  # it went on to diagnose, validate and ask as usual


def test_the_budget_stops_a_planner_and_keeps_the_run_state(tmp_path: Path) -> None:
    tight = Budget(model_calls=3)
    stopped, text = triage_in(tmp_path, model=_keeps_planning(), budget=tight)
    assert stopped.status.value == "ESCALATED"
    esc = stopped.escalation or {}
    assert esc["kind"] == "budget" and esc["details"]["dimension"] == "model_calls"
    assert len(stopped.state["evidence"]) == 3  # what it found is kept
    assert stopped.restarts == []
    assert "budget_trip" in [k for k, _ in audit_data(stopped)]
    assert "budget stop" in text

    more = {"raise_budget": {"model_calls": 40.0}, "auto_approve": True}
    done, _ = triage_in(tmp_path, model=_keeps_planning(), budget=tight, **more)
    assert done.run_id == stopped.run_id and done.status.value == "COMPLETED"
    assert done.state["evidence"][:3] == stopped.state["evidence"]
    assert len(done.state["evidence"]) == MAX_DIAGNOSTICS
    assert len(done.restarts) == 1 and done.audit_ok


def test_a_poor_model_never_gets_a_restart(tmp_path: Path) -> None:
    def babble(request: ModelRequest) -> str:
        return "Restart everything now, it is definitely the database!"

    done, _ = triage_in(tmp_path, model=FunctionModel(babble, name="babble"), auto_approve=True)
    assert done.status.value == "COMPLETED"
    # the runbook's checks ran instead of the unusable plan
    assert [e["tool"] for e in done.state["evidence"]] == [
        "search_log",
        "service_status",
        "disk_usage",
    ]
    assert done.state["validated"] is False and done.state["rounds"] == 2
    assert "remediation" not in done.state and done.restarts == []
    assert "approval.requested" not in [k for k, _ in audit_data(done)]
    assert "handed to the on-call engineer" in done.state["report"]


def test_a_declined_restart_never_runs(tmp_path: Path) -> None:
    paused, _ = triage_in(tmp_path)
    approval_id = (paused.escalation or {})["details"]["approval_id"]
    asyncio.run(_decline(tmp_path / "incident", approval_id))
    done, text = triage_in(tmp_path)
    assert done.status.value == "COMPLETED"
    assert done.state["remediation"]["status"] == "not done"
    assert "rejected" in done.state["remediation"]["why"]
    assert done.restarts == [] and "after" not in done.state
    assert "approval.denied" in [k for k, _ in audit_data(done)] and done.audit_ok
    assert "rejected, signed by lead (oncall-lead)" in text


async def _decline(directory: Path, approval_id: str) -> None:
    """The on-call lead rejects the restart with their key, from outside the example."""
    store = SqliteStore(str(directory / "tether.db"))
    try:
        approvals = Approvals(store)
        rec = await approvals.get(approval_id)
        key = load_private_key((directory / "oncall-lead.pem").read_bytes(), "the lead's key")
        await approvals.reject(approval_id, "lead", sign(key, rec, "reject"), reason="not now")
    finally:
        await store.close()


@pytest.mark.timeout(HANG)
@pytest.mark.skipif(not local_model_installed(), reason="the bundled model is not installed")
def test_the_bundled_model_never_restarts_without_the_lead(tmp_path: Path) -> None:
    """SmolLM2 and MiniLM, offline: whatever the small model answers, the run ends with the
    restart waiting for the on-call lead, or handed to a human; nothing restarted."""
    d = tmp_path / "incident"
    res = _run([sys.executable, str(EXAMPLE), "--model", "local", "--dir", str(d)], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "model local:smollm2" in out and "runbooks by MiniLM" in out
    assert "recalled runbook RB-7" in out
    assert "waiting for the on-call lead" in out or "handed to the on-call engineer" in out
    assert "tool restart_service (write) ok" not in out
    assert "chain verified" in out
    assert Host(d).restarts() == []


EVIDENCE = [
    {"id": "E1", "tool": "search_log", "args": {}, "ok": True, "output": "pool exhausted (50/50)"},
    {"id": "E2", "tool": "disk_usage", "args": {}, "ok": False, "output": "sandbox error"},
]
RUNBOOK = {"runbook": "RB-7", "remediation": "restart_service"}


@pytest.mark.parametrize(
    ("diagnosis", "problem"),
    [
        ({"cause": "x", "evidence": ["E1"], "quote": "pool exhausted (50/50)"}, None),
        ({"cause": "x", "evidence": [], "quote": "pool exhausted (50/50)"}, "cite at least"),
        ({"cause": "x", "evidence": ["E7"], "quote": "pool exhausted (50/50)"}, "not evidence"),
        ({"cause": "x", "evidence": ["E1", "E2"], "quote": "pool exhausted"}, "failed to run"),
        ({"cause": "x", "evidence": ["E1"], "quote": "disk is full on /var"}, "copied exactly"),
        ({"cause": "x", "evidence": ["E1"], "quote": "pool"}, "at least 12"),
        ("not json at all", "not the JSON"),
    ],
)
def test_the_validator_wants_cited_evidence(diagnosis: Any, problem: str | None) -> None:
    check = evidence_validator(EVIDENCE, RUNBOOK)
    text = diagnosis if isinstance(diagnosis, str) else json.dumps(diagnosis)
    problems = check(text)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_a_remediation_outside_the_runbook_is_refused() -> None:
    check = evidence_validator(EVIDENCE, {"runbook": "RB-3", "remediation": "none"})
    text = json.dumps(
        {
            "cause": "x",
            "evidence": ["E1"],
            "quote": "pool exhausted (50",
            "remediation": "restart_service",
        }
    )
    assert check(text) == ["runbook RB-3 allows remediation ['none'], not 'restart_service'"]


def _keeps_planning() -> FunctionModel:
    """A planner that always wants one more log search; it diagnoses like the scripted one."""
    count = iter(range(1, 1000))

    def reply(request: ModelRequest) -> Any:
        system = str(request.messages[0].content)
        if system.startswith("You plan"):
            return {"tool": "search_log", "pattern": f"exhausted|retry-{next(count)}"}
        return scripted_reply(request)

    return FunctionModel(reply, name="keeps-planning")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
