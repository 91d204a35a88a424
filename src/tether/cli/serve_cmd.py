"""``tether serve``: the HTTP API (OpenAPI at /openapi.json, docs at /docs), event streams, the
dashboard and A2A, served by uvicorn.

With a SQLite (or in-memory) store the server also executes runs in its own process (an
embedded worker, ``--workers N`` runs at once; ``--workers 0`` leaves them to ``tether worker``
processes); with PostgreSQL it only takes runs in and reads them, unless ``--workers N``.
While the store holds no API key the server is in local single-tenant mode: no key needed,
and it refuses to bind anything but loopback. SIGTERM or Ctrl-C stops it gracefully (the
embedded worker hands its runs back at the next step boundary).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rich.text import Text

from tether.cli import commands as cmd
from tether.cli import logs
from tether.cli.argtypes import port
from tether.cli.drift_opts import add_drift_options, drift_choice, drift_monitor, drift_names
from tether.cli.render import Output
from tether.core.errors import ConfigurationError, TetherError
from tether.store.api_keys import ApiKeyStore
from tether.store.url import open_store
from tether.worker import default_concurrency

COMMANDS = ("serve",)
ROOT_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
KEEP_ALIVE = 30
"""Seconds an idle keep-alive connection stays open (uvicorn's 5 s default closes connections
that busy clients are about to reuse, and their next request fails on the closed socket)."""


def _root_path(text: str) -> str:
    root = text.rstrip("/")
    if root and not ROOT_PATH.fullmatch(root):
        raise argparse.ArgumentTypeError(
            f"expected a URL path such as /tether (letters, digits, - . _ ~ and / only), got "
            f"{text!r}"
        )
    return root


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the HTTP API, event streams, dashboard and A2A",
        description="Serve the --app workflows over HTTP from the --store. With SQLite the "
        "server runs them itself too (embedded worker); with PostgreSQL run `tether worker`.",
    )
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="bind address")
    p.add_argument("--port", type=port, default=8000, metavar="N", help="port (8000; 0: any)")
    p.add_argument(
        "--workers",
        type=_count,
        metavar="N",
        help="runs the server executes at once itself (default: "
        f"{default_concurrency()} with SQLite or memory, 0 with PostgreSQL)",
    )
    p.add_argument(
        "--max-body",
        type=_count,
        default=1 << 20,
        metavar="BYTES",
        help="largest request body accepted (1 MiB)",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="request timeout (30 s)"
    )
    p.add_argument(
        "--tls-cert",
        type=Path,
        metavar="PATH",
        help="serve HTTPS with this certificate (PEM, the chain after the leaf); needs --tls-key",
    )
    p.add_argument(
        "--tls-key",
        type=Path,
        metavar="PATH",
        help="the certificate's private key (PEM; a password from TETHER_TLS_KEY_PASSWORD)",
    )
    p.add_argument(
        "--root-path",
        type=_root_path,
        default="",
        metavar="PATH",
        help="the path a reverse proxy serves this server under, stripping it (/tether): the "
        "dashboard, the docs and the URLs the API hands out carry it",
    )
    add_drift_options(p)
    logs.add_log_options(p)


def run(args: argparse.Namespace, out: Output) -> int:
    undo = logs.configure(args, out)
    try:
        return asyncio.run(_serve(args, out))
    finally:
        undo()


def _local_store(url: str) -> bool:
    return url.startswith(("sqlite:", "memory:")) or cmd.sqlite_path(url) is not None


async def keys_exist(url: str) -> bool:
    """Whether the store holds a live API key (creating the store and its schema if need be)."""
    path = cmd.sqlite_path(url)
    if path is not None and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        store = open_store(url)
        await store.setup()
    except TetherError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"cannot open store {url!r}: {exc}") from exc
    try:
        return isinstance(store, ApiKeyStore) and await store.has_api_keys()
    finally:
        await store.close()


async def _serve(args: argparse.Namespace, out: Output) -> int:
    # the server plane (FastAPI and what it serves) loads for `tether serve`, not every command
    from tether.server.app import create_app
    from tether.server.settings import ServerSettings
    from tether.worker.http import serve

    s = cmd.settings(args)
    workflows = cmd.load_workflows(s.app) if s.app else []
    keyed = False if s.store_url.startswith("memory:") else await keys_exist(s.store_url)
    if not keyed and args.host not in LOOPBACK:
        raise ConfigurationError(
            f"refusing to bind {args.host}: the store holds no API key, so the server would "
            "run in local mode (no authentication) open to the network. Bind 127.0.0.1, or "
            "make a key first: tether keys create --tenant NAME --scopes read,submit"
        )
    drifting = drift_names(drift_choice(args), [wf.name for wf in workflows])
    if drifting and s.store_url.startswith("memory:"):
        raise ConfigurationError(
            "--drift reads the runs from a store of its own: serve a SQLite or PostgreSQL store"
        )
    if drift_choice(args) and not drifting:
        raise ConfigurationError("--drift checks the --app workflows: pass --app (or --drift A,B)")
    workers = args.workers
    if workers is None:
        workers = default_concurrency() if _local_store(s.store_url) else 0
    settings = ServerSettings(
        store=s.store_url,
        workflows=workflows,
        embedded_workers=workers,
        max_body_bytes=args.max_body,
        require_keys=args.host not in LOOPBACK,
        request_timeout=args.timeout,
    )
    tls = tls_options(args.tls_cert, args.tls_key)
    app = create_app(settings)
    _, level = logs.log_choice(args)
    served = await serve(
        app,
        args.host,
        args.port,
        log_config=None,  # uvicorn's records go through tether's handler (logs.configure)
        log_level=level,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE,
        root_path=args.root_path,
        **tls,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, served.server.stop)
    loop.add_signal_handler(signal.SIGINT, served.server.stop)
    task, port = served.task, served.port
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    mode = "api keys" if keyed else "local mode"
    names = sorted(wf.name for wf in workflows)
    line = {
        "url": url,
        "mode": mode,
        "store": _redacted(s.store_url),
        "workflows": names,
        "embedded_workers": workers,
    }
    if drifting:
        line["drift"] = drifting
    if args.root_path:
        line["root_path"] = args.root_path
    if out.json_mode:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    else:
        out.print(Text(f"tether serve: {url} (dashboard {url}/, docs {url}/docs)", style="bold"))
        if args.root_path:
            out.print(
                f"  behind a proxy at {args.root_path} (that strips the path or passes it on)"
            )
        if keyed:
            out.print("  api keys: every request needs `Authorization: Bearer <key>`")
        else:
            out.print(
                Text(
                    "  local mode: no API keys in the store, single tenant, no authentication, "
                    "bound to loopback only (make a key with `tether keys create` to serve "
                    "tenants)",
                    style="yellow",
                )
            )
        out.print(
            f"  store {line['store']}; workflows {', '.join(names) or 'none (pass --app)'}; "
            + (
                f"embedded worker runs {workers} at once"
                if workers
                else "runs execute in `tether worker` processes"
            )
            + (f"; drift checks of {', '.join(drifting)}" if drifting else "")
        )
    if not drifting:
        await task
        return 0
    async with _drift_watch(s.store_url, drifting, args):
        await task
    return 0


@contextlib.asynccontextmanager
async def _drift_watch(url: str, names: list[str], args: argparse.Namespace) -> AsyncIterator[None]:
    """A ``DriftWatch`` on a store of its own beside the server, for as long as it serves."""
    from tether.evaluation.drift_watch import DriftWatch

    store = open_store(url)
    await store.setup()
    watch = DriftWatch(store, names, monitor=drift_monitor(args))
    running = asyncio.create_task(watch.run())
    try:
        yield
    finally:
        watch.stop()
        await asyncio.gather(running, return_exceptions=True)
        await store.close()


def tls_options(cert: Path | None, key: Path | None) -> dict[str, Any]:
    """uvicorn's TLS settings for ``--tls-cert``/``--tls-key`` (empty: plain HTTP), checked
    before the server starts: both given, readable, and a key that matches the certificate."""
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise ConfigurationError(
            "HTTPS needs both --tls-cert (the certificate) and --tls-key (its private key)"
        )
    password = os.environ.get("TETHER_TLS_KEY_PASSWORD") or None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"cannot read {exc.filename}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot use --tls-cert {cert} with --tls-key {key}: {exc} (PEM files, the key "
            "matching the certificate; an encrypted key takes its password from "
            "TETHER_TLS_KEY_PASSWORD)"
        ) from None
    return {
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_keyfile_password": password,
    }


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
