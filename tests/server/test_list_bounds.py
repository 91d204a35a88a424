"""A list carries a bounded summary of each run: metadata, escalation and error over 4 KiB are
cut, with a marker saying so and where all of it is; the run-change stream sends at most
``max_bytes`` a look."""

from __future__ import annotations

from pathlib import Path

from tests.server import apps
from tests.server.conftest import Server
from tether.core.lifecycle import RunStatus
from tether.graph.runtime import Runtime
from tether.server import views
from tether.server.sse import RunChanges
from tether.store.sqlite import SqliteStore
from tether.store.types import RunRecord

BLOB = "x" * 900_000  # under the 1 MiB body limit: a submit takes it


def test_a_list_cuts_big_metadata_and_says_where_the_rest_is(server: Server) -> None:
    c = server.client
    meta = {"owner": "ops", "blob": BLOB, "ticket": "T-1"}
    big = server.submit("echo", {"text": "a"}, metadata=meta)
    small = server.submit("echo", {"text": "b"}, metadata={"owner": "ops"})
    server.wait(big, "COMPLETED")
    server.wait(small, "COMPLETED")
    page = c.get("/v1/runs")
    assert page.status_code == 200
    assert len(page.content) < 16_000  # it was 900 KB: the blob rode along in the list
    items = {item["run_id"]: item for item in page.json()["items"]}
    cut = items[big]
    assert "blob" not in cut["metadata"]
    assert cut["metadata"]["owner"] == "ops" and cut["metadata"]["ticket"] == "T-1"
    assert len(views.serde.dumps(cut["metadata"])) <= views.LIST_METADATA_BYTES
    marker = cut["metadata_truncated"]
    assert marker["omitted_keys"] == 1 and marker["bytes"] > 900_000
    assert marker["href"] == f"/v1/runs/{big}"
    whole = c.get(marker["href"]).json()  # where the marker says: all of it
    assert whole["metadata"]["blob"] == BLOB and whole["metadata_truncated"] is None
    assert items[small]["metadata_truncated"] is None
    assert items[small]["metadata"]["owner"] == "ops"


def test_many_small_entries_are_cut_too(server: Server) -> None:
    meta = {f"k{i:05d}": i for i in range(20_000)}  # ~240 KB of small entries
    run_id = server.submit("echo", {"text": "a"}, metadata=meta)
    server.wait(run_id, "COMPLETED")
    (item,) = server.client.get("/v1/runs").json()["items"]
    kept = item["metadata"]
    assert 0 < len(views.serde.dumps(kept)) <= views.LIST_METADATA_BYTES
    assert all(meta[k] == v for k, v in kept.items() if k in meta)  # whole entries only
    whole = server.client.get(f"/v1/runs/{run_id}").json()["metadata"]
    assert item["metadata_truncated"]["omitted_keys"] == len(whole) - len(kept) > 19_000


async def test_the_change_stream_sends_at_most_max_bytes_a_look(tmp_path: Path) -> None:
    rt = Runtime(SqliteStore(tmp_path / "runs.db"), workflows=apps.workflows, recover=False)
    await rt.open()
    try:
        made = []
        for i in range(5):
            handle = await rt.submit(apps.echo, {"text": str(i)}, metadata={"note": "n" * 2000})
            made.append(handle.run_id)
        changes = RunChanges(rt, None, max_bytes=7_000)  # two ~3 KB frames fit, not three
        looks = [await changes.look() for _ in range(4)]
        assert [len(frames) for frames in looks] == [2, 2, 1, 0]
        for frames in looks:
            assert sum(len(f.encode()) for f in frames) <= 7_000
        sent = [f.split('"run_id":"')[1].split('"')[0] for frames in looks for f in frames]
        assert sent == made  # each once, oldest first
        # one frame over the bound still goes out (alone), and a change is sent again
        alone = RunChanges(rt, None, max_bytes=10)
        assert [len(await alone.look()) for _ in range(3)] == [1, 1, 1]
        await rt.cancel(made[0])
        assert made[0] in (await changes.look())[0]
    finally:
        await rt.close()


def test_a_list_cuts_a_big_interrupt_payload_and_says_where_it_is(server: Server) -> None:
    """An interrupt's payload is the run's to make (here 900 KB): a list carries the
    escalation's small entries and a marker, ``GET`` of the run all of it (to answer it)."""
    run_id = server.submit("ask", {"question": BLOB})
    server.wait(run_id, "ESCALATED")
    page = server.client.get("/v1/runs")
    assert page.status_code == 200 and len(page.content) < 16_000
    (item,) = page.json()["items"]
    esc = item["escalation"]
    assert esc["kind"] == "interrupt" and "interrupts" not in esc
    assert len(views.serde.dumps(esc)) <= views.LIST_METADATA_BYTES
    marker = item["escalation_truncated"]
    assert marker["bytes"] > 900_000 and marker["omitted_keys"] >= 1
    assert marker["href"] == f"/v1/runs/{run_id}"
    assert item["metadata_truncated"] is None and item["error_truncated"] is None
    whole = server.client.get(marker["href"]).json()
    (asked,) = whole["escalation"]["interrupts"]
    assert asked["payload"] == {"question": BLOB} and whole["escalation_truncated"] is None


def test_a_big_error_is_cut_in_a_list_item_and_a_small_one_is_whole() -> None:
    run = RunRecord("r1", "wf", RunStatus.FAILED)
    run.error = {"type": "ValueError", "message": "m" * 50_000, "node": "n"}
    item = views.listed(run, "/under")
    assert item["error"] == {"type": "ValueError", "node": "n"}
    assert item["error_truncated"] == {
        "bytes": len(views.serde.dumps(run.error)),
        "omitted_keys": 1,
        "href": "/under/v1/runs/r1",
    }
    run.error = {"type": "ValueError", "message": "small"}
    item = views.listed(run)
    assert item["error"] == run.error and item["error_truncated"] is None
