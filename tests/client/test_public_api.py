"""The public surface of ``tether.client``: pinned and importable."""

from __future__ import annotations

import tether.client as client

EXPECTED = sorted(
    [
        "Approval",
        "AsyncClient",
        "AuthError",
        "Client",
        "Event",
        "HistoryStep",
        "NotFoundError",
        "Page",
        "Run",
        "RunUpgrade",
        "ServerBusyError",
        "ServerError",
        "ServerUnavailableError",
        "StateAt",
        "Transition",
        "WorkflowInfo",
    ]
)


def test_all_is_pinned() -> None:
    assert sorted(client.__all__) == EXPECTED


def test_every_name_imports() -> None:
    for name in client.__all__:
        assert getattr(client, name) is not None
