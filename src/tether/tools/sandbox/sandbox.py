"""Public entry points: :class:`Sandbox`, :func:`run_python` and their sync twins."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal, TypeVar, get_args

from tether.core.errors import ConfigurationError

from ._scratch import normalize_files
from .limits import SandboxLimits
from .result import SandboxResult
from .runner import LaunchSpec, execute

__all__ = [
    "DEFAULT_HIDDEN_PATHS",
    "Backend",
    "Sandbox",
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


def _resolve_backend(backend: str) -> str | None:
    """The runsc path for the gVisor backend, or None for the process backend."""
    if backend not in get_args(Backend):
        raise ConfigurationError(
            f"unknown sandbox backend {backend!r}; use one of {list(get_args(Backend))}"
        )
    if backend == "process":
        return None
    runsc = shutil.which("runsc")
    if runsc is None and backend == "gvisor":
        raise ConfigurationError(
            f"backend='gvisor' needs `runsc`, not found on PATH; {GVISOR_INSTALL_HINT}"
        )
    return runsc


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""

    async def main() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
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

    * ``backend``: ``"auto"`` (gVisor when ``runsc`` is on PATH, else the process sandbox),
      ``"process"`` or ``"gvisor"`` (ConfigurationError when ``runsc`` is missing).
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
    ) -> None:
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise ConfigurationError(
                f"limits must be a SandboxLimits, got {type(limits).__name__}; "
                "e.g. SandboxLimits(cpu_seconds=5, wall_seconds=10)"
            )
        _resolve_backend(backend)  # fail early on a bad name or a missing runsc
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

    def _spec(
        self,
        code: str,
        limits: SandboxLimits | None,
        files: Mapping[str, str | bytes] | None,
        stdin: str | None,
        audit_hook: bool = True,
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
            runsc=_resolve_backend(self.backend),
            uid=self.uid,
            gid=self.gid,
            hidden_paths=self.hidden_paths,
            audit_hook=audit_hook,
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
        return await execute(self._spec(code, limits, files, stdin))

    def run_sync(
        self,
        code: str,
        *,
        limits: SandboxLimits | None = None,
        files: Mapping[str, str | bytes] | None = None,
        stdin: str | None = None,
    ) -> SandboxResult:
        """Blocking twin of :meth:`run`."""
        spec = self._spec(code, limits, files, stdin)
        return _run_sync(lambda: execute(spec))


async def run_python(
    code: str,
    *,
    limits: SandboxLimits | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: str | None = None,
    backend: Backend = "auto",
) -> SandboxResult:
    """Run untrusted ``code`` in a fresh sandbox with default settings (see :class:`Sandbox`)."""
    return await Sandbox(backend=backend).run(code, limits=limits, files=files, stdin=stdin)


def run_python_sync(
    code: str,
    *,
    limits: SandboxLimits | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: str | None = None,
    backend: Backend = "auto",
) -> SandboxResult:
    """Blocking twin of :func:`run_python`."""
    return Sandbox(backend=backend).run_sync(code, limits=limits, files=files, stdin=stdin)
