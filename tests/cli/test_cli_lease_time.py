"""``tether runs show`` compares a lease's expiry with the store's time, not this host's: on
PostgreSQL the database server wrote it, and a host whose clock is off used to show a live
lease as expired (or an expired one as live) in the middle of an incident."""

from __future__ import annotations

import io
import time
from pathlib import Path

from tests.cli.app_example import wf
from tether import Runtime
from tether.cli import commands as cmd
from tether.cli.render import Output
from tether.store.types import RunRecord, RunStatus


def shown(view: cmd.RunView) -> str:
    out = Output(color=False)
    out.out.file = io.StringIO()
    out.run(view)
    text = out.out.file.getvalue()
    return next(line for line in text.splitlines() if line.lstrip().startswith("lease"))


def leased(expires_at: float) -> RunRecord:
    return RunRecord(
        "r1", "wf", RunStatus.EXECUTING, owner="w-1", lease_token=3, lease_expires_at=expires_at
    )


def test_the_expiry_is_counted_from_the_stores_time() -> None:
    server_now = time.time() - 3600.0  # the server's time; this host runs an hour ahead
    live = shown(cmd.RunView(leased(server_now + 12.0), 0, {}, now=server_now))
    assert "w-1 (token 3)" in live and "(in 12s)" in live and "expired" not in live
    gone = shown(cmd.RunView(leased(server_now - 5.0), 0, {}, now=server_now))
    assert "expired" in gone
    # without the store's time (an older server answering), this host's clock is used
    assert "expired" in shown(cmd.RunView(leased(server_now + 12.0), 0, {}))


async def test_show_reads_the_time_from_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with Runtime(url, workflows=[wf]) as rt:
        run_id = (await rt.run(wf, {"topic": "clocks"})).run_id
    settings = cmd.Settings(store_url=url, store_origin="--store")
    before = time.time()
    view = await cmd.show_run(settings, run_id, None)
    assert view.now is not None and before <= view.now <= time.time()
