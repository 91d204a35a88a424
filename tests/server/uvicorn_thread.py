"""Serve an app with real uvicorn (lifespan on) on a free 127.0.0.1 port in a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

DEADLINE = 60.0


@contextlib.contextmanager
def served(app: Any, **options: Any) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` while ``app`` is served there (``options``: more of
    ``uvicorn.Config``'s, e.g. ``root_path``)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {DEADLINE} s")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
