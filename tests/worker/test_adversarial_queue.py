"""The queue against near-miss input: a delay no clock reaches, and a requeue filtered by a
queue no run can be on, are refused with what to do instead (they were taken: a run parked
until 1e300 that its ``wait()`` waited on forever, and "requeued 0 runs" that said nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

from tests.cli.conftest import run_cli
from tests.cli.test_cli import assert_user_error
from tether import END, START, Graph, RunStatus, Runtime
from tether.core.errors import InvalidInputError
from tether.graph.sleep import LATEST


class S(TypedDict, total=False):
    n: int


def _wf() -> Any:
    g = Graph(S, name="adversarial_queue")
    g.add_node("inc", lambda s: {"n": s.get("n", 0) + 1})
    g.add_edge(START, "inc").add_edge("inc", END)
    return g.compile()


WF = _wf()


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'q.db'}"


@pytest.mark.parametrize("delay", [1e300, 2.0**62, LATEST])
async def test_a_delay_past_the_last_date_is_refused_and_no_run_is_made(
    url: str, delay: float
) -> None:
    async with Runtime(url, workflows=[WF], recover=False) as rt:
        with pytest.raises(InvalidInputError, match="after 9999-12-31"):
            await rt.submit(WF, {"n": 0}, delay=delay)
        assert await rt.store.list_runs() == []


async def test_a_long_delay_that_can_happen_is_still_taken(url: str) -> None:
    async with Runtime(url, workflows=[WF], recover=False) as rt:
        handle = await rt.submit(WF, {"n": 0}, delay=86400.0 * 365 * 100)  # a century
        run = await rt.store.get_run(handle.run_id)
        assert run.status is RunStatus.PLANNED and run.available_at < LATEST


@pytest.mark.parametrize("queue", ["", "default ", " default", "de\tfault"])
async def test_a_requeue_filtered_by_a_queue_no_run_can_be_on_is_refused(
    url: str, queue: str
) -> None:
    async with Runtime(url, workflows=[WF], recover=False) as rt:
        with pytest.raises(InvalidInputError, match="queue"):
            await rt.requeue(queue=queue)
        with pytest.raises(InvalidInputError, match="queue"):
            await rt.list_runs(dead_letter=True, queue=queue)
        assert await rt.requeue(queue="default") == []  # a queue a run can be on: fine


async def test_the_cli_refuses_a_blank_requeue_queue_with_one_error_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    async with Runtime(url, workflows=[WF], recover=False):
        pass  # the store exists
    res = run_cli("runs", "requeue", "--dead-letter", "--queue", "default ", store=url)
    assert_user_error(res, "no space at either end")
