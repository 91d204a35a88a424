"""The parent side of one execution: spawn, capture, enforce the wall clock, reap, classify."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import time
from typing import Any

from . import launcher as _launcher
from ._classify import classify, gvisor_exit_code
from ._disk_watch import watch_scratch
from ._identity import Identity, acquire
from ._outcome import decode_files, labels, runsc_argv, signal_name
from ._reap import descendants, kill_uid
from ._scratch import collect
from ._stream import STATUS_LIMIT, Stream
from ._workdir import (
    DISABLE_NAMESPACES_ENV,
    SAFE_PATH,
    LaunchSpec,
    Workdir,
    interpreter,
    prepare,
    sandbox_env,
)
from .result import (
    KilledReason,
    SandboxError,
    SandboxResult,
    WeakIsolationError,
)

__all__ = ["DISABLE_NAMESPACES_ENV", "SAFE_PATH", "LaunchSpec", "execute"]

_TERM_GRACE_S = 0.5  # after SIGTERM to the launcher, SIGKILL the whole group
_GVISOR_TERM_GRACE_S = 3.0  # runsc forwards the SIGTERM, then tears gVisor down
_EOF_GRACE_S = 1.0  # after the exit, how long to wait for the pipes to close
# Signals a parent may ignore or handle; the launcher starts with all of them at default.
_RESET_SIGNALS = frozenset(
    s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP) and s < 32
)

_log = logging.getLogger("tether.tools.sandbox")

# Probed by the first execution: whether this host lets us unshare namespaces at all, and why not.
_namespaces_supported: bool | None = None
_namespaces_failure: list[str] = []

WEAK_ISOLATION_HINT = (
    "the sandbox would fall back to the audit hook (network, writes to world-writable places) "
    "and file permissions alone. Run where namespaces are allowed (root with CAP_SYS_ADMIN, or "
    "unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 / "
    "user.max_user_namespaces > 0), use backend='gvisor', or accept the weaker isolation with "
    "Sandbox(..., allow_weak_isolation=True) / run_python(..., allow_weak_isolation=True)"
)


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are >= 10, so dup2 onto 0..3 in the child never collides."""
    r, w = os.pipe2(os.O_CLOEXEC)
    hr = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 10)
    hw = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(r)
    os.close(w)
    return hr, hw


class _Execution:
    def __init__(self, spec: LaunchSpec, work: Workdir, who: Identity) -> None:
        self.spec = spec
        self.work = work
        self.who = who
        self.loop = asyncio.get_running_loop()
        self.pid = 0
        self.reaped = False
        self.kill_reason: KilledReason | None = None
        self._killing = False
        self._escalation: asyncio.TimerHandle | None = None
        self._streams: list[Stream] = []
        self._pidfd = -1

    # -- spawning ------------------------------------------------------------------------

    def spawn(self) -> None:
        python = interpreter()
        argv = [python, "-I", "-S", "-B", "-u", self.work.launcher, self.work.config]
        if self.spec.runsc is not None:
            # runsc passes only descriptors 0-2: the status travels on stderr.
            argv = [*runsc_argv(self.spec.runsc), *argv[:-1], "--status-on-stderr", argv[-1]]
        pipes = [_high_pipe() for _ in range(3)]
        (out_r, out_w), (err_r, err_w), (st_r, st_w) = pipes
        try:
            if os.geteuid() == 0:  # lets the code reopen its own stdout/stderr (/dev/stdout)
                for fd in (out_w, err_w):
                    os.fchown(fd, self.who.uid, self.who.gid)
            self.pid = os.posix_spawn(
                argv[0],
                argv,
                self._spawn_env(),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, self.work.stdin or os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                    (os.POSIX_SPAWN_DUP2, st_w, 3),
                ],
                setsid=True,
                setsigmask=(),
                setsigdef=_RESET_SIGNALS,
            )
        except BaseException:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, st_w):
                os.close(fd)
        cap = self.spec.limits.max_output_bytes
        self.stdout = Stream(self.loop, out_r, cap, lambda: self.kill("output"))
        gvisor = self.spec.runsc is not None
        # The closing line carries the collected files, base64-encoded.
        trailer_cap = self.spec.limits.max_collected_bytes * 2 + STATUS_LIMIT if gvisor else 0
        self.stderr = Stream(
            self.loop, err_r, cap, lambda: self.kill("output"), gvisor, trailer_cap
        )
        # Process backend: the closing status line carries the files collected in the tmpfs.
        files_cap = 0 if gvisor else self.spec.limits.max_collected_bytes * 2
        self.status = Stream(self.loop, st_r, STATUS_LIMIT + files_cap, None)
        self._streams = [self.stdout, self.stderr, self.status]

    def _spawn_env(self) -> dict[str, str]:
        env = sandbox_env(self.work.scratch)
        if self.spec.runsc is not None:
            # runsc keeps its bundle and state under TMPDIR: not in scratch. (The launcher gives
            # the code the environment of the config, scratch as TMPDIR.)
            private = os.path.join(self.work.base, "runsc")
            os.makedirs(private, mode=0o700, exist_ok=True)
            env["TMPDIR"] = private
        return env

    # -- killing -------------------------------------------------------------------------

    def status_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for line in bytes(self.status.buf + self.stderr.header).splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    if "errors" in item and "errors" in fields:
                        item["errors"] = [*fields["errors"], *item["errors"]]
                    fields.update(item)
        return fields

    def _killpg(self) -> None:
        # Only called before the leader is reaped: its pid is still its process group's id.
        if not self.reaped:
            # runsc starts the gVisor sandbox in a session of its own: kill it by descent.
            strays = descendants(self.pid) if self.spec.runsc is not None else []
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            for pidfd in strays:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                os.close(pidfd)

    def _launcher_reaps(self) -> bool:
        """Whether to ask the launcher (SIGTERM) rather than SIGKILL the group straight away.

        With a PID namespace the launcher SIGKILLs the namespace's init and reaps it, so the
        usage is accounted and no zombie is left to the host's init. Before its status arrives
        we do not know yet, and asking costs at most the grace period. ``runsc`` forwards the
        SIGTERM to the launcher inside gVisor and then stops its sandbox and gofer cleanly
        (a SIGKILL would leave them to the host's init).
        """
        if self.spec.runsc is not None:
            return True
        fields = self.status_fields()
        return bool(fields.get("forked", "forked" not in fields))

    @property
    def _grace(self) -> float:
        return _TERM_GRACE_S if self.spec.runsc is None else _GVISOR_TERM_GRACE_S

    def kill(self, reason: KilledReason) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        if self._killing or self.reaped:
            return
        self._killing = True
        if self._launcher_reaps():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGTERM)
            self._escalation = self.loop.call_later(self._grace, self._killpg)
        else:
            self._killpg()

    # -- waiting -------------------------------------------------------------------------

    async def _exited(self) -> None:
        """Returns once the launcher is a zombie (exited, not yet reaped)."""
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            # No pidfd (kernel < 5.3): poll without reaping (WNOWAIT keeps the pgid ours).
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            while os.waitid(os.P_PID, self.pid, flags) is None:  # noqa: ASYNC110, ASYNC222
                await asyncio.sleep(0.02)
            return
        ready: asyncio.Future[None] = self.loop.create_future()

        def on_ready() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_reader(self._pidfd, on_ready)
        try:
            await ready
        finally:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    async def wait(self) -> tuple[int, Any, float]:
        start = time.monotonic()
        exited = asyncio.ensure_future(self._exited())
        watch = None
        if self.spec.runsc is None:  # without a mount namespace no tmpfs caps scratch
            quota = lambda: bool(self.status_fields().get("scratch_quota"))  # noqa: E731
            kill = lambda: self.kill("disk")  # noqa: E731
            watch = asyncio.ensure_future(
                watch_scratch(self.work.scratch, self.spec.limits, quota, kill)
            )
        try:
            done, _ = await asyncio.wait({exited}, timeout=self.spec.limits.wall_seconds)
            if not done:
                self.kill("timeout")
            while not exited.done():
                done, _ = await asyncio.wait({exited}, timeout=2 * self._grace)
                if not done:
                    self._killpg()
            exited.result()
        finally:
            if not exited.done():
                exited.cancel()
            if watch is not None:
                watch.cancel()
        duration = time.monotonic() - start
        if self._escalation is not None:
            self._escalation.cancel()
        self._killpg()  # whatever is left of the group (the leader is a zombie: pgid is ours)
        # Already a zombie: wait4 returns at once, with the rusage of the whole tree.
        _, status, usage = os.wait4(self.pid, 0)  # noqa: ASYNC222
        self.reaped = True
        pending = [s.done for s in self._streams if not s.done.done()]
        if pending:
            await asyncio.wait(pending, timeout=_EOF_GRACE_S)
        for s in self._streams:
            if not s.done.done():
                s._read()  # drain what is buffered
            s.close()
        return status, usage, duration

    def abandon(self) -> None:
        """Cancelled or failed: kill everything and reap, synchronously (bounded)."""
        if self.pid and not self.reaped:
            if self._launcher_reaps():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(self.pid, signal.SIGTERM)
                deadline = time.monotonic() + self._grace
                flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
                with contextlib.suppress(ChildProcessError):
                    while os.waitid(os.P_PID, self.pid, flags) is None:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.002)
            self._killpg()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.reaped = True
        if self._escalation is not None:
            self._escalation.cancel()
        for s in self._streams:
            s.close()


def _weak_isolation_error(reasons: list[str]) -> WeakIsolationError:
    return WeakIsolationError(
        f"namespaces unavailable ({'; '.join(reasons)}): {WEAK_ISOLATION_HINT}", reasons
    )


async def execute(spec: LaunchSpec) -> SandboxResult:
    """Run ``spec.code`` once in a fresh sandbox and report what happened."""
    global _namespaces_supported
    if spec.runsc is None and not spec.allow_weak_isolation and _namespaces_supported is False:
        raise _weak_isolation_error(_namespaces_failure or ["namespaces are unavailable"])
    who = acquire(spec.uid, spec.gid)
    work: Workdir | None = None
    run: _Execution | None = None
    try:
        work = await asyncio.to_thread(prepare, spec, who, _namespaces_supported is not False)
        run = _Execution(spec, work, who)
        run.spawn()  # in the loop's thread: PR_SET_PDEATHSIG follows the spawning thread
        try:
            status, usage, duration = await run.wait()
        except BaseException:
            run.abandon()
            raise
        fields = run.status_fields()
        simulated = os.environ.get(DISABLE_NAMESPACES_ENV) == "1"
        if spec.runsc is None and not simulated:
            if "weak_isolation" in fields or ("network_ns" in fields and not fields["network_ns"]):
                _namespaces_supported = False
                _namespaces_failure[:] = [str(r) for r in fields.get("weak_isolation") or ()]
            elif fields.get("network_ns"):
                _namespaces_supported = True
        if "weak_isolation" in fields and fields.get("stage") != "user":
            raise _weak_isolation_error([str(r) for r in fields["weak_isolation"]])
        for problem in fields.get("errors") or ():
            _log.warning("sandbox isolation degraded: %s", problem)
        if who.unique and not fields.get("pid_ns"):
            await asyncio.to_thread(kill_uid, who.uid)
        end = run.stderr.closing_status() if spec.runsc is not None else {}
        closing = end if spec.runsc is not None else fields  # the launcher's closing line
        stderr_text = run.stderr.buf.decode("utf-8", "replace")
        started = fields.get("stage") == "user" or run.kill_reason is not None
        if spec.runsc is not None and "stage" not in fields and run.kill_reason is None:
            raise SandboxError(
                f"runsc ({spec.runsc}) did not start the sandbox (exit status "
                f"{os.waitstatus_to_exitcode(status)}); stderr: {stderr_text[-2000:]!r}"
            )
        if not started and ("fatal" in fields or status == _launcher.SETUP_FAILED << 8):
            raise SandboxError(
                f"{fields.get('fatal', 'the sandbox launcher failed')}; "
                f"stderr: {stderr_text[-2000:]!r}"
            )
        exit_code = os.waitstatus_to_exitcode(status)
        if spec.runsc is not None:
            exit_code = gvisor_exit_code(end, exit_code)
        signum = -exit_code if exit_code < 0 else None
        cpu_s = float(usage.ru_utime + usage.ru_stime)
        if isinstance(end.get("cpu_s"), int | float):
            cpu_s = float(end["cpu_s"])  # gVisor: the code's own, not the gVisor kernel's
        reason = classify(
            killed_by_parent=run.kill_reason or ("disk" if closing.get("disk_exceeded") else None),
            exit_code=exit_code,
            signum=signum,
            cpu_s=cpu_s,
            cpu_limit=spec.limits.cpu_seconds,
            stderr_tail=stderr_text[-4096:],
            disk_full=closing.get("disk_full") is True,
        )
        if spec.runsc is not None or fields.get("scratch_quota"):
            # collected by the launcher, where the files are (gVisor, the tmpfs)
            files, files_truncated = decode_files(closing)
        else:
            files, files_truncated = await asyncio.to_thread(
                collect,
                work.scratch,
                spec.limits.max_collected_files,
                spec.limits.max_collected_bytes,
            )
        network, filesystem = labels(spec, fields, who)
        return SandboxResult(
            stdout=run.stdout.buf.decode("utf-8", "replace"),
            stderr=stderr_text,
            exit_code=exit_code,
            signal=signal_name(signum) if signum is not None else None,
            killed_reason=reason,
            duration_s=duration,
            cpu_s=cpu_s,
            max_rss_bytes=int(
                end.get("child_maxrss_kb", fields.get("child_maxrss_kb", usage.ru_maxrss))
            )
            * 1024,
            stdout_truncated=run.stdout.truncated,
            stderr_truncated=run.stderr.truncated,
            network=network,
            filesystem=filesystem,
            files=files,
            files_truncated=files_truncated,
            pid=run.pid,
            uid=int(fields.get("uid", who.uid)),
        )
    finally:
        if work is not None:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, work.base, True))
        who.release()
