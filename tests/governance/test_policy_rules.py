"""Policy rules on their own: every condition and operator, priority order, YAML rules that
decide exactly as the same rules in Python, and bad rules refused with errors that name the
rule and the field."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tether.core.errors import ConfigurationError
from tether.governance import Facts, PolicySet, Rule
from tether.governance.policy_conditions import parse_path


def facts(**kw: Any) -> Facts:
    base: dict[str, Any] = {
        "kind": "tool",
        "tool": "refund",
        "scope": "write",
        "args": {},
        "projected": {},
        "confidence": None,
        "tenant": None,
        "metadata": {},
    }
    return Facts(**{**base, **kw})


def verdict(rule: Rule, **kw: Any) -> bool:
    return rule.matches(facts(**kw))


def test_tool_globs_scope_and_kind() -> None:
    r = Rule("r", "deny", tool=["refund*", "pay"], scope=["write", "destructive"])
    assert verdict(r, tool="refund_order")
    assert verdict(r, tool="pay", scope="destructive")
    assert not verdict(r, tool="lookup")
    assert not verdict(r, scope="read")
    assert not verdict(r, kind="model")
    m = Rule("m", "deny", kind="model", tool="openai:*")
    assert m.matches(facts(kind="model", tool="openai:gpt-4o", scope=None))
    assert not m.matches(facts(kind="model", tool="anthropic:claude", scope=None))


@pytest.mark.parametrize(
    ("cond", "value", "expected"),
    [
        (5, 5, True),
        (5, 6, False),
        ({"equals": "x"}, "x", True),
        ({"not_equals": "x"}, "y", True),
        ({"in": ["a", "b"]}, "b", True),
        ({"in": ["a", "b"]}, "c", False),
        ({"not_in": ["a"]}, "c", True),
        ({"<": 10}, 9.5, True),
        ({"<": 10}, 10, False),
        ({"<=": 10}, 10, True),
        ({">": 10}, 11, True),
        ({">": 10}, "11", True),  # a string is not a number: undecided, a deny rule matches
        ({">": 0}, True, True),  # nor is a bool
        ({">": 10}, float("nan"), True),  # nor NaN (see test_undecided_comparisons_fail_closed)
        ({">": 10}, Decimal("10.5"), True),
        ({">": 10}, Decimal("9.5"), False),
        ({">": 10}, 10**400, True),
        ({">=": 10, "<": 20}, "15", True),
        ({">=": 10, "<": 20}, 25, False),
        ({">=": 10, "regex": "x"}, "y", False),  # what is decided (no match) stays decided
        ({">=": 10, "<": 20}, 15, True),
        ({">=": 10, "<": 20}, 25, False),
        ({"regex": r"@evil\.com$"}, "bob@evil.com", True),
        ({"regex": r"@evil\.com$"}, "bob@good.com", False),
        ({"regex": "x"}, 5, False),
    ],
)
def test_argument_operators(cond: Any, value: Any, expected: bool) -> None:
    r = Rule("r", "deny", args={"$.v": cond})
    assert verdict(r, args={"v": value}) is expected


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), Decimal("NaN"), "nan", "900", True, [900], {"v": 1}],
)
def test_undecided_comparisons_fail_closed(value: Any) -> None:
    """A value no number comparison can decide never gets past a rule that restricts: a deny or
    escalate rule matches it, an allow rule does not (the next rule decides)."""
    for action in ("deny", "escalate"):
        big = {"$.amount": {">": 500}}
        assert verdict(Rule("big", action, args=big), args={"amount": value})
        assert verdict(Rule("big", action, projected=big), projected={"amount": value})
        assert verdict(Rule("big", action, metadata=big), metadata={"amount": value})
        assert verdict(Rule("sure", action, confidence={"<": 0.5}), confidence=value)
    assert not verdict(
        Rule("small", "allow", args={"$.amount": {"<": 500}}), args={"amount": value}
    )
    policy = PolicySet(
        [
            Rule("small", "allow", args={"$.amount": {"<=": 500}}, priority=1),
            Rule("no-big-refunds", "deny", args={"$.amount": {">": 500}}),
        ],
        guard=False,
    )
    assert policy.decide(facts(args={"amount": value})).action == "deny"
    assert policy.decide(facts(args={"amount": 20})).rule == "small"
    assert policy.decide(facts(args={"amount": 900})).rule == "no-big-refunds"
    # a path that reaches no value, or None, compares nothing: nothing is undecided
    assert not verdict(Rule("big", "deny", args={"$.amount": {">": 500}}), args={})
    assert not verdict(Rule("big", "deny", args={"$.amount": {">": 500}}), args={"amount": None})


def test_paths_exists_and_wildcards() -> None:
    has = Rule("has", "deny", args={"$.memo": {"exists": True}})
    lacks = Rule("lacks", "deny", args={"memo": {"exists": False}})
    assert verdict(has, args={"memo": "x"}) and not verdict(has, args={})
    assert verdict(lacks, args={}) and not verdict(lacks, args={"memo": None})
    deep = Rule("deep", "deny", args={"$.items[*].price": {">": 100}, "$.items[0].sku": "A"})
    assert verdict(deep, args={"items": [{"sku": "A", "price": 5}, {"sku": "B", "price": 500}]})
    assert not verdict(deep, args={"items": [{"sku": "A", "price": 5}]})
    assert not verdict(deep, args={"items": "not a list"})
    assert parse_path("$.a.b[2][*].c", "x") == ("a", "b", 2, "*", "c")


def test_projected_confidence_tenant_metadata_untrusted() -> None:
    assert verdict(Rule("c", "deny", projected={"cost": {">": 1}}), projected={"cost": 2.5})
    assert not verdict(Rule("c", "deny", projected={"cost": {">": 1}}), projected={})
    low = Rule("low", "escalate", confidence={"<": 0.6})
    assert verdict(low, confidence=0.3)
    assert not verdict(low, confidence=0.9)
    assert not verdict(low)  # nobody said how confident: the rule does not apply
    t = Rule("t", "deny", tenant="trial-*")
    assert verdict(t, tenant="trial-1") and not verdict(t, tenant="acme") and not verdict(t)
    md = Rule("md", "deny", metadata={"$.plan": {"in": ["free"]}})
    assert verdict(md, metadata={"plan": "free"}) and not verdict(md, metadata={"plan": "pro"})
    u = Rule("u", "deny", untrusted=True)
    assert verdict(u, untrusted=True) and not verdict(u, untrusted=False)


def test_priority_then_declaration_order_then_defaults() -> None:
    ps = PolicySet(
        [
            Rule("a", "allow", tool="refund"),
            Rule("b", "deny", tool="refund"),
            Rule("c", "escalate", tool="refund", args={"$.amount": {">": 100}}, priority=5),
            Rule("d", "deny", tool="refund", args={"$.amount": {">": 1000}}, priority=5),
        ]
    )
    assert ps.decide(facts(args={"amount": 5})).rule == "a"
    assert ps.decide(facts(args={"amount": 500})).rule == "c"
    assert ps.decide(facts(args={"amount": 5000})).rule == "c"  # same priority: declared first
    assert ps.decide(facts(tool="lookup", scope="read")).rule == "default:read"
    wipe = ps.decide(facts(tool="wipe", scope="destructive"))
    assert (wipe.action, wipe.rule) == ("escalate", "default:destructive")
    bare = PolicySet([], defaults=False, otherwise="deny")
    assert (bare.decide(facts()).action, bare.decide(facts()).rule) == ("deny", "otherwise")


PY_RULES = [
    Rule("no-big", "deny", tool="refund", args={"$.amount": {">": 1000}}, reason="too big"),
    Rule("mid", "escalate", tool="refund", args={"$.amount": {">": 100}}),
    Rule("vip", "allow", tool="refund", metadata={"$.tier": "vip"}, priority=10),
    Rule("mail-out", "escalate", tool="send_*", args={"$.to": {"regex": r"@(?!acme\.com$)"}}),
    Rule("trial", "deny", scope=["write", "destructive"], tenant="trial-*"),
    Rule("unsure", "escalate", scope="write", confidence={"<": 0.5}),
    Rule("pricey", "escalate", projected={"cost": {">=": 2}}),
]

YAML = """
defaults: true
rules:
  - name: no-big
    tool: refund
    args: {"$.amount": {">": 1000}}
    action: deny
    reason: too big
  - name: mid
    tool: refund
    args:
      $.amount: {">": 100}
    action: escalate
  - {name: vip, tool: refund, metadata: {$.tier: vip}, priority: 10, action: allow}
  - name: mail-out
    tool: send_*
    args: {"$.to": {regex: "@(?!acme\\\\.com$)"}}
    action: escalate
  - {name: trial, scope: [write, destructive], tenant: trial-*, action: deny}
  - {name: unsure, scope: write, confidence: {"<": 0.5}, action: escalate}
  - {name: pricey, projected: {cost: {">=": 2}}, action: escalate}
"""


def test_yaml_rules_decide_as_the_python_rules(tmp_path: Path) -> None:
    py = PolicySet(PY_RULES)
    from_text = PolicySet.from_yaml(YAML)
    path = tmp_path / "policy.yaml"
    path.write_text(YAML, encoding="utf-8")
    from_file = PolicySet.from_yaml(path)
    from_str_path = PolicySet.from_yaml(str(path))
    grid = itertools.product(
        [("refund", "write"), ("send_email", "write"), ("wipe", "destructive"), ("get", "read")],
        [
            {"amount": 50},
            {"amount": 500},
            {"amount": 5000},
            {"to": "x@acme.com"},
            {"to": "x@evil.io"},
        ],
        [{}, {"tier": "vip"}],
        [None, "trial-9", "acme"],
        [None, 0.2, 0.9],
        [{}, {"cost": 3.0}],
    )
    n = 0
    for (tool, scope), args, md, tenant, conf, proj in grid:
        f = facts(tool=tool, scope=scope, args=args, metadata=md, tenant=tenant)
        f.confidence, f.projected = conf, proj
        want = py.decide(f)
        assert from_text.decide(f) == want
        assert from_file.decide(f) == want
        assert from_str_path.decide(f) == want
        n += 1
    assert n == 4 * 5 * 2 * 3 * 3 * 2
    assert py.decide(facts(args={"amount": 5000})).reason == "too big"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"name": "r", "action": "deny", "tol": "x"},
            r"policy rule 'r': unknown field\(s\) \['tol'\]",
        ),
        ({"name": "r", "action": "maybe"}, r"policy rule 'r': 'action' must be one of"),
        ({"action": "deny"}, r"missing the field 'name'"),
        ({"name": "r"}, r"policy rule 'r': missing the field 'action'"),
        (
            {"name": "r", "action": "deny", "args": {"a": {"~": 1}}},
            r"rule 'r' field 'args'.a: unknown operator '~'",
        ),
        (
            {"name": "r", "action": "deny", "args": {"a": {"<": "ten"}}},
            r"field 'args'.a: '<' takes a finite number",
        ),
        (
            {"name": "r", "action": "deny", "args": {"a": {">=": float("nan")}}},
            r"field 'args'.a: '>=' takes a finite number, got nan",
        ),
        ({"name": "r", "action": "deny", "args": {"a": {"in": 3}}}, r"'in' takes a list"),
        (
            {"name": "r", "action": "deny", "args": {"a": {"regex": "("}}},
            r"field 'args'.a: bad regex",
        ),
        (
            {"name": "r", "action": "deny", "args": {"a": {"exists": "yes"}}},
            r"'exists' takes true or false",
        ),
        (
            {"name": "r", "action": "deny", "args": {"a..b": 1}},
            r"field 'args' path 'a..b': cannot read",
        ),
        ({"name": "r", "action": "deny", "args": ["a"]}, r"field 'args': takes a mapping"),
        (
            {"name": "r", "action": "deny", "scope": "admin"},
            r"field 'scope': unknown scope 'admin'",
        ),
        ({"name": "r", "action": "deny", "tool": 5}, r"field 'tool': takes a glob"),
        ({"name": "r", "action": "deny", "priority": "high"}, r"'priority' must be an integer"),
        ({"name": "r", "action": "deny", "untrusted": "yes"}, r"'untrusted' must be true or false"),
        ({"name": "r", "action": "deny", "kind": "human"}, r"'kind' must be 'tool' or 'model'"),
        (
            {"name": "r", "action": "escalate", "approval": {"required": 0}},
            r"rule 'r' field 'approval'",
        ),
        (
            {"name": "r", "action": "escalate", "approval": {"who": "x"}},
            r"field 'approval': unknown",
        ),
    ],
)
def test_bad_rules_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PolicySet([spec])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [\n  - {name: a, action: deny", r"policy YAML is not valid YAML"),
        ("rules: {name: a}", r"'rules' must be a list"),
        ("rulez: []", r"unknown key\(s\) \['rulez'\]"),
        ("42", r"write a list of rules or a mapping"),
        ("- {name: a, action: deny, tool: x, args: {amount: {'>>': 3}}}", r"rule 'a' field 'args'"),
        ("- {name: a, action: deny}\n- {name: a, action: allow}", r"repeated: \['a'\]"),
        ("missing-file.yaml", r"policy file 'missing-file.yaml' does not exist"),
    ],
)
def test_bad_yaml_is_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PolicySet.from_yaml(text)


def test_bad_policy_set_options() -> None:
    with pytest.raises(ConfigurationError, match="otherwise"):
        PolicySet([], otherwise="perhaps")
    with pytest.raises(ConfigurationError, match="needs the injection guard"):
        PolicySet([Rule("u", "deny", untrusted=True)], guard=None)
    with pytest.raises(ConfigurationError, match="guard"):
        PolicySet([], guard="on")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"PolicySet\(approval=...\)"):
        PolicySet([], approval={"required": -1})
    with pytest.raises(ConfigurationError, match="model_confidence"):
        from tether.governance import model_confidence

        with model_confidence(1.5):
            pass
