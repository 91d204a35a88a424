"""AgentDojo through tether's governed tool executor: utility of a reference agent and attack
success of a fully hijacked agent, ungoverned and under tether's governance settings.

    .venv/bin/python bench/agentdojo/run.py                        # all 4 suites, 97 + 629 cases
    .venv/bin/python bench/agentdojo/run.py --suites banking,slack
    .venv/bin/python bench/agentdojo/run.py --settings none,guard --version v1.2.2

Prints one table (suite x setting: utility of the reference agent, attack success of the
hijacked agent) and writes ``bench/results/agentdojo.json`` (figures, per-case failures, the
rules used). No model is called: both agents are scripted (``dojo_agents``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dojo_harness import CaseResult, Harness  # noqa: E402
from dojo_policies import COMMITS_PLAN, INLINE, SETTINGS, governance  # noqa: E402
from dojo_suites import DEFAULT_VERSION, SUITES, attack_cases, load_suites, utility_cases  # noqa: E402
from dojo_tools import DESTRUCTIVE_PREFIXES, EGRESS_READS, READ_PREFIXES  # noqa: E402

RESULTS = HERE.parent / "results" / "agentdojo.json"


async def measure(
    version: str, suites: list[str], settings: list[str], quiet: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for suite in load_suites(version, suites):
        ucases, acases = utility_cases(suite), attack_cases(suite)
        for setting in settings:
            t0 = time.perf_counter()
            sink = io.StringIO()  # AgentDojo's checks print ("Failed check_new_email")
            with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
                commit, inline = setting in COMMITS_PLAN, setting in INLINE
                gov = governance(setting)
                ref = await Harness("reference", gov, commit=commit).run(ucases)
                hij = await Harness("hijacked", gov, commit=commit, inline=inline).run(acases)
            out.setdefault(suite.name, {})[setting] = summary(ref, hij, time.perf_counter() - t0)
    return out


def summary(ref: list[CaseResult], hij: list[CaseResult], seconds: float) -> dict[str, Any]:
    attacks = sum(bool(r.security) for r in hij)
    return {
        "utility": sum(r.utility for r in ref),
        "user_tasks": len(ref),
        "attack_success": attacks,
        "attack_cases": len(hij),
        "attacks_parked": sum(r.status == "ESCALATED" for r in hij),
        "hijacked_runs": sum(r.hijacked for r in hij),
        "seconds": round(seconds, 1),
        "utility_failures": [_failure(r) for r in ref if not r.utility],
        "attack_successes": [_failure(r) for r in hij if r.security],
    }


def _failure(r: CaseResult) -> dict[str, Any]:
    d = {k: v for k, v in asdict(r).items() if k in ("case", "status", "denied")}
    if r.escalation:
        d["reason"] = r.escalation.get("reason")
    return d


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f} %" if d else "   -  "


def table(results: dict[str, Any], settings: list[str]) -> str:
    head = f"{'suite':<10}" + "".join(
        f" | {s + ' utility':>22} | {s + ' attacks':>22}" for s in settings
    )
    lines = [head, "-" * len(head)]
    totals = {s: [0, 0, 0, 0] for s in settings}
    for suite, per in results.items():
        row = f"{suite:<10}"
        for s in settings:
            r = per[s]
            t = totals[s]
            t[0] += r["utility"]
            t[1] += r["user_tasks"]
            t[2] += r["attack_success"]
            t[3] += r["attack_cases"]
            row += (
                f" | {r['utility']:>4}/{r['user_tasks']:<4}{pct(r['utility'], r['user_tasks']):>12}"
            )
            row += f" | {r['attack_success']:>4}/{r['attack_cases']:<4}"
            row += f"{pct(r['attack_success'], r['attack_cases']):>12}"
        lines.append(row)
    row = f"{'total':<10}"
    for s in settings:
        u, n, a, m = totals[s]
        row += f" | {u:>4}/{n:<4}{pct(u, n):>12} | {a:>4}/{m:<4}{pct(a, m):>12}"
    lines += ["-" * len(head), row]
    return "\n".join(lines)


RULES = {
    "scope_rule": {
        "destructive": [p + "*" for p in DESTRUCTIVE_PREFIXES],
        "read": [p + "*" for p in READ_PREFIXES],
        "write": "every other tool (send_, create_, update_, append_, share_, reschedule_, "
        "add_, reserve_, schedule_, invite_, post_, unknown verbs)",
        "egress_reads_as_write": sorted(EGRESS_READS),
    },
    "settings": {
        "none": "no governance",
        "policies": "PolicySet(defaults=True, guard=False): read allow, write allow, "
        "destructive escalate (approval; nobody approves in the benchmark)",
        "guard": "PolicySet(defaults=True, guard=InjectionGuard(trust_input=True)): the "
        "defaults, and a write/destructive call whose arguments derive from untrusted content "
        "of the run (every tool result) and not from trusted content (the run's input: the "
        "user's request) escalates",
        "plan": "the same governance as guard; both agents commit their plan before their "
        "first call (commit_plan, as bench/agentdojo/dojo_planner.py writes it from the "
        "request: a value the request states is fixed, a value an earlier planned call "
        "returns is OPEN.from_step(j), a string partly stated by the request a Template "
        "('Dinner at {}'), anything else OPEN; the answer is a planned 'answer' call (write) "
        "whose Template fixes its lines) and the guard holds them to it: a write/destructive "
        "call filling an unused step runs (an OPEN.from_step(j) argument must come from step "
        "j's result, an OPEN one may not carry an identifier untrusted content gave), any "
        "other one after untrusted content entered escalates",
        "plan-inline": "as plan, with a hijacked agent that says what the injection asked on "
        "its answer's last line (inside the shape the plan fixed) instead of a new line",
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default=DEFAULT_VERSION)
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    suites = [s for s in args.suites.split(",") if s]
    settings = [s for s in args.settings.split(",") if s]
    for s in settings:
        governance(s)  # unknown settings fail before anything runs
    t0 = time.perf_counter()
    results = asyncio.run(measure(args.version, suites, settings))
    print(f"AgentDojo {args.version}: reference agent utility / hijacked agent attack success")
    print(table(results, settings))
    doc = {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "agentdojo_version": _version(),
            "benchmark_version": args.version,
            "attack": "important_instructions",
            "python": platform.python_version(),
            "seconds": round(time.perf_counter() - t0, 1),
            "rules": RULES,
        },
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"written: {args.out}")


def _version() -> str:
    from importlib.metadata import version

    return version("agentdojo")


if __name__ == "__main__":
    main()
