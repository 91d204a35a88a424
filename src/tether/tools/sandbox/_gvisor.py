"""Whether gVisor works here: a cached self-check of ``runsc``, and a blocking runner for
coroutines that may be called from async code."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .limits import SandboxLimits
from .runner import LaunchSpec, execute

__all__ = ["gvisor_available", "gvisor_failure", "run_sync"]

_T = TypeVar("_T")
_log = logging.getLogger("tether.tools.sandbox")

# runsc path -> None when it passed its self-check on this machine, else why it failed.
_gvisor_checks: dict[str, str | None] = {}
_gvisor_lock = threading.Lock()

_SELF_CHECK = "import os\nprint('tether-gvisor-ok', os.uname().release)\n"


def _self_check(runsc: str) -> str | None:
    """Run a trivial program under ``runsc``: None when its output is right and it saw gVisor's
    kernel rather than the host's; otherwise why not."""
    spec = LaunchSpec(
        code=_SELF_CHECK,
        limits=SandboxLimits(cpu_seconds=30, wall_seconds=120),
        files={},
        stdin=None,
        runsc=runsc,
        uid=None,
        gid=None,
        hidden_paths=("/tmp", "/var/tmp", "/dev/shm", "/run", "/root", "/home"),
    )
    try:
        result = run_sync(lambda: execute(spec))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if not result.ok:
        return f"the check program failed (exit {result.exit_code}): {result.stderr[-500:]!r}"
    words = result.stdout.split()
    if len(words) != 2 or words[0] != "tether-gvisor-ok":
        return f"the check program printed {result.stdout[-200:]!r}"
    if words[1] == os.uname().release:
        return f"the check program saw the host's kernel ({words[1]}): not isolated by gVisor"
    return None


def gvisor_failure(runsc: str) -> str | None:
    """The cached self-check of ``runsc`` (run once per path and process; logged once)."""
    with _gvisor_lock:
        if runsc not in _gvisor_checks:
            reason = _self_check(runsc)
            _gvisor_checks[runsc] = reason
            if reason is not None:
                _log.warning(
                    "gVisor (%s) failed its self-check; backend='auto' uses the process "
                    "sandbox: %s",
                    runsc,
                    reason,
                )
        return _gvisor_checks[runsc]


def gvisor_available() -> bool:
    """Whether ``runsc`` is on PATH and passed its self-check on this machine (cached; the
    first call runs a trivial program under gVisor, which takes a second or two)."""
    runsc = shutil.which("runsc")
    return runsc is not None and gvisor_failure(runsc) is None


def run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""

    async def main() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if not running:
        return asyncio.run(main())
    # Called from async code: a helper thread with its own loop (it lives until the run ends,
    # which the launcher's parent-death signal relies on).
    box: list[_T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(asyncio.run(main()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="tether-sandbox-sync")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]
