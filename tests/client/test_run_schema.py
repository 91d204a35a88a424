"""The client's ``Run`` and the server's OpenAPI ``Run`` agree: every field the server
documents is a field of the client's run, read from a real server's answers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.client.conftest import LiveServer
from tests.server.apps import workflows
from tether.client import Client, Run
from tether.server.app import create_app
from tether.server.settings import ServerSettings


def test_every_documented_run_field_is_a_client_field(tmp_path: Path) -> None:
    spec = create_app(ServerSettings(store=f"sqlite:///{tmp_path / 'x.db'}", workflows=workflows))
    schemas = spec.openapi()["components"]["schemas"]
    fields = {f.name for f in dataclasses.fields(Run)} - {"raw"}
    documented = set(schemas["Run"]["properties"])
    assert documented == fields, documented ^ fields
    # a list item is the run less input, state and result
    assert set(schemas["RunSummary"]["properties"]) == fields - {"input", "state", "result"}
    cut = schemas["MetadataCut"]["properties"]
    assert set(cut) == {"bytes", "omitted_keys", "href"}


def test_a_listed_run_says_its_metadata_was_cut(server: LiveServer) -> None:
    with Client(server.url) as c:
        big = c.submit("echo", {"text": "a"}, metadata={"note": "n", "blob": "x" * 100_000})
        c.wait(big.run_id, timeout=120)
        assert big.metadata_truncated is None and big.metadata["blob"]  # submit: all of it
        (item,) = c.list_runs()
        assert item.metadata == {k: v for k, v in item.metadata.items() if k != "blob"}
        assert item.metadata["note"] == "n"
        assert item.metadata_truncated is not None
        assert item.metadata_truncated["href"] == f"/v1/runs/{big.run_id}"
        assert item.metadata_truncated["omitted_keys"] == 1
        assert item.idempotency_key == big.idempotency_key is not None
        assert item.event_seq > 0 and item.input_hash == big.input_hash is not None
        whole = c.get(big.run_id)
        assert whole.metadata["blob"] == "x" * 100_000 and whole.metadata_truncated is None
