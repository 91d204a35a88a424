"""Public entry points: :class:`Sandbox`, :func:`run_python` and their sync twins."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal, TypeVar, get_args

from tether.core.errors import ConfigurationError

from ._scratch import normalize_files
from .limits import SandboxLimits
from .result import SandboxError, SandboxResult
from .runner import LaunchSpec, execute

__all__ = [
    "DEFAULT_HIDDEN_PATHS",
    "Backend",
    "Sandbox",
    "gvisor_available",
    "run_python",
    "run_python_sync",
]

Backend = Literal["auto", "process", "gvisor"]

DEFAULT_HIDDEN_PATHS: tuple[str, ...] = (
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/run",
    "/var/run",
    "/root",
    "/home",
    "/mnt",
    "/media",
)
"""Directories replaced by an empty read-only tmpfs in the sandbox's mount namespace (the
interpreter's own directories and the scratch directory are bound back in): world-writable
places, host sockets under /run, and home directories."""

GVISOR_INSTALL_HINT = (
    "install gVisor's `runsc` and put it on PATH (https://gvisor.dev/docs/user_guide/install/), "
    "or use backend='auto' (gVisor when available, else the process sandbox) or 'process'"
)

_T = TypeVar("_T")
_log = logging.getLogger("tether.tools.sandbox")

# runsc path -> None when it passed its self-check on this machine, else why it failed.
_gvisor_checks: dict[str, str | None] = {}
_gvisor_lock = threading.Lock()

_SELF_CHECK = "import os\nprint('tether-gvisor-ok', os.uname().release)\n"


def _gvisor_self_check(runsc: str) -> str | None:
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
        hidden_paths=DEFAULT_HIDDEN_PATHS,
    )
    try:
        result = _run_sync(lambda: execute(spec))
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


def _gvisor_failure(runsc: str) -> str | None:
    """The cached self-check of ``runsc`` (run once per path and process; logged once)."""
    with _gvisor_lock:
        if runsc not in _gvisor_checks:
            reason = _gvisor_self_check(runsc)
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
    return runsc is not None and _gvisor_failure(runsc) is None


def _check_backend_name(backend: str) -> None:
    if backend not in get_args(Backend):
        raise ConfigurationError(
            f"unknown sandbox backend {backend!r}; use one of {list(get_args(Backend))}"
        )
    if backend == "gvisor" and shutil.which("runsc") is None:
        raise ConfigurationError(
            f"backend='gvisor' needs `runsc`, not found on PATH; {GVISOR_INSTALL_HINT}"
        )


def _resolve_backend(backend: str) -> str | None:
    """The runsc path for the gVisor backend, or None for the process backend. ``"auto"`` picks
    gVisor only once it passed its self-check here (blocking: call it off the event loop)."""
    _check_backend_name(backend)
    if backend == "process":
        return None
    runsc = shutil.which("runsc")
    if runsc is None:
        if backend == "gvisor":  # removed from PATH since the check above
            raise ConfigurationError(f"backend='gvisor' needs `runsc`; {GVISOR_INSTALL_HINT}")
        return None
    failure = _gvisor_failure(runsc)
    if failure is None:
        return runsc
    if backend == "gvisor":
        raise SandboxError(
            f"backend='gvisor': {runsc} failed its self-check on this machine ({failure}); "
            "fix the gVisor installation or use backend='process'"
        )
    return None


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
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


class Sandbox:
    """Runs untrusted Python code, one fresh isolated process per call.

    Holds defaults (limits, backend, identity, hidden paths); every call may override the
    limits. See the package docstring for exactly what is isolated and how.

    * ``backend``: ``"auto"`` (gVisor when ``runsc`` is on PATH *and* passed a self-check on
      this machine, else the process sandbox), ``"process"`` or ``"gvisor"``
      (ConfigurationError when ``runsc`` is missing, SandboxError when it fails the check).
    * ``allow_weak_isolation``: where the kernel refuses namespaces, the process backend
      raises :class:`WeakIsolationError` unless this is True (then it runs behind the audit
      hook, file permissions and rlimits only, and says so in the result).
    * ``uid`` / ``gid``: run as this unprivileged identity (root only). Default: a fresh uid per
      execution when running as root, the current user otherwise.
    * ``hidden_paths``: directories hidden from the code (see :data:`DEFAULT_HIDDEN_PATHS`).
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        backend: Backend = "auto",
        uid: int | None = None,
        gid: int | None = None,
        hidden_paths: Sequence[str] = DEFAULT_HIDDEN_PATHS,
        allow_weak_isolation: bool = False,
    ) -> None:
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise ConfigurationError(
                f"limits must be a SandboxLimits, got {type(limits).__name__}; "
                "e.g. SandboxLimits(cpu_seconds=5, wall_seconds=10)"
            )
        _check_backend_name(backend)  # fail early on a bad name or a missing runsc
        if not isinstance(allow_weak_isolation, bool):
            raise ConfigurationError(
                f"allow_weak_isolation must be a bool, got {allow_weak_isolation!r}"
            )
        if isinstance(hidden_paths, str) or not all(
            isinstance(p, str) and p.startswith("/") for p in hidden_paths
        ):
            raise ConfigurationError(
                f"hidden_paths must be a sequence of absolute paths, got {hidden_paths!r}"
            )
        self.limits = limits or SandboxLimits()
        self.backend: Backend = backend
        self.uid = uid
        self.gid = gid
        self.hidden_paths = tuple(hidden_paths)
        self.allow_weak_isolation = allow_weak_isolation

    def _spec(
        self,
        code: str,
        limits: SandboxLimits | None,
        files: Mapping[str, str | bytes] | None,
        stdin: str | None,
        audit_hook: bool = True,
        runsc: str | None = None,
    ) -> LaunchSpec:
        if not isinstance(code, str):
            raise ConfigurationError(
                f"code must be a str of Python source, got {type(code).__name__}"
            )
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise ConfigurationError(f"limits must be a SandboxLimits, got {type(limits).__name__}")
        if stdin is not None and not isinstance(stdin, str):
            raise ConfigurationError(f"stdin must be a str or None, got {type(stdin).__name__}")
        return LaunchSpec(
            code=code,
            limits=limits or self.limits,
            files=normalize_files(files),
            stdin=stdin.encode("utf-8") if stdin is not None else None,
            runsc=runsc,
            uid=self.uid,
            gid=self.gid,
            hidden_paths=self.hidden_paths,
            audit_hook=audit_hook,
            allow_weak_isolation=self.allow_weak_isolation,
        )

    async def run(
        self,
        code: str,
        *,
        limits: SandboxLimits | None = None,
        files: Mapping[str, str | bytes] | None = None,
        stdin: str | None = None,
    ) -> SandboxResult:
        """Run ``code`` as ``__main__`` in a fresh sandbox.

        ``files`` are created in the scratch directory (the code's cwd) first; ``stdin`` is
        its standard input. Cancelling the call kills the execution.
        """
        spec = self._spec(code, limits, files, stdin)
        runsc = await asyncio.to_thread(_resolve_backend, self.backend)
        return await execute(dataclasses.replace(spec, runsc=runsc))

    def run_sync(
        self,
        code: str,
        *,
        limits: SandboxLimits | None = None,
        files: Mapping[str, str | bytes] | None = None,
        stdin: str | None = None,
    ) -> SandboxResult:
        """Blocking twin of :meth:`run`."""
        spec = self._spec(code, limits, files, stdin, runsc=_resolve_backend(self.backend))
        return _run_sync(lambda: execute(spec))


async def run_python(
    code: str,
    *,
    limits: SandboxLimits | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: str | None = None,
    backend: Backend = "auto",
    allow_weak_isolation: bool = False,
) -> SandboxResult:
    """Run untrusted ``code`` in a fresh sandbox with default settings (see :class:`Sandbox`)."""
    box = Sandbox(backend=backend, allow_weak_isolation=allow_weak_isolation)
    return await box.run(code, limits=limits, files=files, stdin=stdin)


def run_python_sync(
    code: str,
    *,
    limits: SandboxLimits | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: str | None = None,
    backend: Backend = "auto",
    allow_weak_isolation: bool = False,
) -> SandboxResult:
    """Blocking twin of :func:`run_python`."""
    box = Sandbox(backend=backend, allow_weak_isolation=allow_weak_isolation)
    return box.run_sync(code, limits=limits, files=files, stdin=stdin)
