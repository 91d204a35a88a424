"""Policy rules whose tool names miss the tool by a hair. A deny rule written ``deleterepo``
for the tool ``DeleteRepo`` (an MCP server's camel case) never matched, and the repository was
deleted; a rule naming ``"refund "`` (a stray space in YAML quotes) matched nothing, silently.
A rule that restricts (deny, escalate) now matches tool names whatever their case, while an
allow rule still needs the exact name; a tool glob holding what no tool name can (a space) is
refused when the rule is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import ConfigurationError
from tether.governance import Facts, Governance, PolicySet, Rule
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool

DELETED: list[str] = []


@tool(name="DeleteRepo", scope="write", idempotent=True)
def delete_repo(repo: str) -> str:
    """Delete a repository."""
    DELETED.append(repo)
    return "deleted"


class S(TypedDict, total=False):
    error: str


def workflow(policies: PolicySet) -> Any:
    tools = ToolExecutor([delete_repo])

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        res = await tools.call("DeleteRepo", {"repo": "prod"}, ctx=ctx)
        return {"error": type(res.error).__name__ if res.error else ""}

    g = Graph(S, name="repos")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(policies=policies))


async def test_a_deny_rule_in_another_case_still_denies(tmp_path: Path) -> None:
    DELETED.clear()
    rules = PolicySet.from_yaml("""
rules:
  - name: never-delete-repos
    tool: deleterepo
    action: deny
    reason: repositories are deleted by hand
""")
    async with Runtime(SqliteStore(tmp_path / "p.db")) as rt:
        res = await rt.run(workflow(rules), {})
    assert res.status is RunStatus.COMPLETED
    assert res.state["error"] == "PolicyViolationError" and DELETED == []


async def test_an_escalate_rule_in_another_case_still_escalates(tmp_path: Path) -> None:
    DELETED.clear()
    rules = PolicySet([Rule("ask-first", "escalate", tool="DELETE*")])
    async with Runtime(SqliteStore(tmp_path / "p.db")) as rt:
        res = await rt.run(workflow(rules), {})
    assert res.status is RunStatus.ESCALATED and res.escalation["kind"] == "approval"
    assert DELETED == []


def test_an_allow_rule_needs_the_exact_name() -> None:
    rules = PolicySet([Rule("ok", "allow", tool="deleterepo")], defaults=False, otherwise="deny")
    seen = Facts("tool", "DeleteRepo", "write", {}, {}, None, None, {})
    assert rules.decide(seen).rule == "otherwise"
    exact = PolicySet([Rule("ok", "allow", tool="DeleteRepo")], defaults=False, otherwise="deny")
    assert exact.decide(seen).rule == "ok"


@pytest.mark.parametrize("glob", ["refund ", " refund", "refund order", "refund\t*"])
def test_a_tool_glob_no_tool_name_can_match_is_refused(glob: str) -> None:
    with pytest.raises(ConfigurationError, match=r"policy rule 'r' field 'tool'.*'refund"):
        Rule("r", "deny", tool=glob)
    with pytest.raises(ConfigurationError, match="no tool name"):
        PolicySet.from_yaml(f'rules:\n  - {{name: r, action: deny, tool: "{glob}"}}\n')
