"""``tether approvals`` through a live ``tether serve``: list and show read the server, and
approve signs the request here with the approver's key file and sends the signature; the
run then goes on in the server's worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.server.apps import workflows
from tests.server.live import ServerThread
from tether import RunStatus
from tether.cli.main import main
from tether.client import Client
from tether.server.app import create_app
from tether.server.settings import ServerSettings


def test_approve_through_the_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "serve.db"
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=workflows, embedded_workers=2)
    with ServerThread(create_app(settings)) as port:
        url = f"http://127.0.0.1:{port}"
        with Client(url) as c:
            run = c.wait(c.submit("refunds", {"amount": 7}).run_id, timeout=120)
        assert run.status is RunStatus.ESCALATED
        key = tmp_path / "alice.pem"
        assert main(["approvals", "keygen", "--out", str(key)]) == 0
        store = ["--store", f"sqlite:///{db}"]
        assert main(["approvals", "approver", "add", "alice", "--role", "finance",
                     "--public-key", f"{key}.pub", *store]) == 0  # fmt: skip
        server = ["--server", url]
        assert main(["approvals", "approver", "add", "bob", "--role", "finance",
                     "--public-key", f"{key}.pub", *server]) == 2  # fmt: skip
        assert "works on a store" in capsys.readouterr().err

        assert main(["approvals", "list", "--status", "pending", "--json", *server]) == 0
        (req,) = json.loads(capsys.readouterr().out)
        assert (req["run_id"], req["arguments"]) == (run.run_id, {"amount": 7})
        aid = req["approval_id"]
        assert main(["approvals", "list", *server]) == 0
        assert aid in capsys.readouterr().out

        assert main(["approvals", "approve", "nope", "--approver", "alice", "--key", str(key),
                     *server]) == 2  # fmt: skip
        assert "not found" in capsys.readouterr().err
        assert main(["approvals", "approve", aid, "--approver", "alice", "--key", str(key),
                     *server]) == 0  # fmt: skip
        assert f"approval {aid}: approved" in capsys.readouterr().out
        assert main(["approvals", "show", aid, "--json", *server]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["status"] == "approved" and shown["votes"][0]["approver"] == "alice"
        with Client(url) as c:
            done = c.wait(run.run_id, timeout=120)
        assert done.status is RunStatus.COMPLETED
        assert done.state["out"] == ["refunded 7"]  # type: ignore[index]
