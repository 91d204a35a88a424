"""Blackboard: sources react to the keys they watch, a controller picks who acts, the run
stops at the goal, when quiet, or after max_turns."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tether.agents import BlackboardOptions, KnowledgeSource, blackboard
from tether.core.errors import ConfigurationError, RunFailedError
from tether.llm import ScriptedModel


def parse(board: dict[str, Any]) -> dict[str, Any]:
    return {"numbers": [int(n) for n in re.findall(r"\d+", board["text"])]}


def total(board: dict[str, Any]) -> dict[str, Any]:
    return {"total": sum(board["numbers"])}


def biggest(board: dict[str, Any]) -> dict[str, Any]:
    return {"max": max(board["numbers"])}


SOURCES = [
    KnowledgeSource("parse", ("text",), parse, "reads numbers from text"),
    KnowledgeSource("total", ("numbers",), total, "adds the numbers"),
    KnowledgeSource("biggest", ("numbers",), biggest, "finds the largest number"),
]


async def test_sources_react_to_changes_until_the_goal() -> None:
    wf = blackboard(BlackboardOptions(SOURCES, goal=lambda b: "total" in b and "max" in b))
    final = await wf.ainvoke({"board": {"text": "3 apples, 4 pears, 10 plums"}})
    assert final["board"]["total"] == 17 and final["board"]["max"] == 10
    assert final["stopped"] == "goal"
    assert [e["source"] for e in final["log"]] == ["parse", "total", "biggest"]


async def test_a_controller_picks_who_acts_next() -> None:
    def prefer_biggest(board: dict[str, Any], candidates: list[str]) -> str:
        return "biggest" if "biggest" in candidates else candidates[0]

    wf = blackboard(
        BlackboardOptions(SOURCES, goal=lambda b: "max" in b, controller=prefer_biggest)
    )
    final = await wf.ainvoke({"board": {"text": "1 2 3"}})
    assert [e["source"] for e in final["log"]] == ["parse", "biggest"]
    assert "total" not in final["board"] and final["triggered"] == ["total"]


async def test_a_model_controller_and_spend() -> None:
    controller = ScriptedModel(["parse", "I pick total", "biggest"])
    wf = blackboard(
        BlackboardOptions(
            SOURCES, goal=lambda b: "max" in b and "total" in b, controller=controller
        )
    )
    final = await wf.ainvoke({"board": {"text": "5 6"}})
    assert [e["source"] for e in final["log"]] == ["parse", "total", "biggest"]
    assert final["model_calls"] == 3


async def test_quiet_and_max_turns_stop_the_run() -> None:
    quiet = await blackboard(BlackboardOptions(SOURCES, goal=lambda b: False)).ainvoke(
        {"board": {"text": "1"}}
    )
    assert quiet["stopped"] == "quiet" and quiet["turns"] == 3

    def ping(board: dict[str, Any]) -> dict[str, Any]:
        return {"pong": board.get("ping", 0) + 1}

    def pong(board: dict[str, Any]) -> dict[str, Any]:
        return {"ping": board.get("pong", 0) + 1}

    loop = [KnowledgeSource("a", ("ping",), ping), KnowledgeSource("b", ("pong",), pong)]
    final = await blackboard(BlackboardOptions(loop, goal=lambda b: False, max_turns=5)).ainvoke(
        {"board": {"ping": 0}}
    )
    assert final["stopped"] == "max_turns" and final["turns"] == 5


async def test_bad_sources_and_picks_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="distinct names"):
        BlackboardOptions([SOURCES[0], SOURCES[0]], goal=lambda b: True)
    with pytest.raises(ConfigurationError, match="not one string"):
        BlackboardOptions([KnowledgeSource("x", "text", parse)], goal=lambda b: True)  # type: ignore[arg-type]
    wf = blackboard(
        BlackboardOptions(SOURCES, goal=lambda b: False, controller=lambda b, c: "nobody")
    )
    with pytest.raises(RunFailedError, match="must pick one of"):
        await wf.ainvoke({"board": {"text": "1"}})


async def test_a_model_controller_is_read_by_whole_names_not_substrings() -> None:
    """'The parser.' made 'parse' act: the first candidate whose name appeared anywhere in the
    answer was taken, so a source named inside another's name won the other's turns."""
    sources = [
        KnowledgeSource("parse", ("text",), lambda b: {"a": 1}, "parses"),
        KnowledgeSource("parser", ("text",), lambda b: {"b": 2}, "parses better"),
    ]
    controller = ScriptedModel(["The parser.", "'parse'"])
    wf = blackboard(BlackboardOptions(sources, goal=lambda b: False, controller=controller))
    final = await wf.ainvoke({"board": {"text": "1"}})
    assert [e["source"] for e in final["log"]] == ["parser", "parse"]


async def test_a_model_controller_naming_nobody_is_asked_again_then_fails() -> None:
    """An answer naming no candidate made the first candidate act, silently: it goes back to
    the model now, and one still naming nobody fails the run with a typed error."""
    controller = ScriptedModel(["Nobody: the board looks complete.", "biggest"])
    wf = blackboard(BlackboardOptions(SOURCES, goal=lambda b: "max" in b, controller=controller))
    final = await wf.ainvoke({"board": {"numbers": [4, 9]}})
    assert [e["source"] for e in final["log"]] == ["biggest"] and final["model_calls"] == 2
    retry = controller.requests[1].messages[-1].content
    assert "exactly one of these names" in retry and "['total', 'biggest']" in retry

    stubborn = ScriptedModel(["total or biggest, both are fine"], cycle=True)
    wf = blackboard(
        BlackboardOptions(SOURCES, goal=lambda b: "max" in b, controller=stubborn, max_repairs=2)
    )
    with pytest.raises(RunFailedError, match="StructuredOutputError") as failed:
        await wf.ainvoke({"board": {"numbers": [4, 9]}})
    assert "names several of ['total', 'biggest']" in str(failed.value)
    assert stubborn.calls == 3


def test_sources_that_are_not_named_knowledge_sources_are_refused() -> None:
    """A list of names crashed with AttributeError; a source named '' ended the run as if
    nobody was triggered (the controller's empty pick reads as 'stop')."""
    with pytest.raises(ConfigurationError, match="must be a KnowledgeSource"):
        BlackboardOptions(["parse"], goal=lambda b: True)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="non-empty name"):
        BlackboardOptions([KnowledgeSource("", ("text",), parse)], goal=lambda b: True)
