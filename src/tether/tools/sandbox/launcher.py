"""In-child bootstrap of the tether sandbox.

This file is copied next to each execution and run by a fresh interpreter
(``python -I -S -B -u launcher.py [--status-on-stderr] CONFIG``). It imports only the standard
library and nothing of tether, so it works with no site-packages at all; the modules it needs
beyond this file (``mounts.py``, ``audithook.py``, ``collect.py``) are copied next to it and
loaded by path. It has three stages:

``outer`` (root, or the caller's uid)
    Closes inherited descriptors, arms ``PR_SET_PDEATHSIG``, unshares the network, mount and PID
    namespaces (plus a user namespace when not root), forks the ``inner`` stage, waits for it
    and mirrors its death (same exit code, same signal). On SIGTERM from the parent it SIGKILLs
    the inner stage, which takes the whole PID namespace down with it. When the config requires
    kernel isolation and a namespace is refused, it stops here (``weak_isolation``).

``inner`` (PID 1 of the new PID namespace, still privileged)
    Builds the filesystem view (tmpfs over hidden directories, the interpreter and the scratch
    directory bound back, everything read-only but scratch, a fresh read-only ``/proc``; inside
    gVisor, which has no bind mounts, hidden directories are pruned in its overlay instead), sets
    the rlimits, drops to the sandbox uid/gid with no supplementary groups, sets
    ``no_new_privs``, and ``execve``\\ s the ``user`` stage: the unprivileged interpreter is a new
    image that never loaded ctypes and holds no capability.

``user`` (unprivileged)
    Pre-imports and neuters ``_posixsubprocess``, installs the audit hook, closes the status
    descriptor and runs the code as ``__main__``.

Each stage reports one JSON line on descriptor 3 (the parent's status pipe). Under gVisor, which
passes no descriptor but 0-2 (``--status-on-stderr``), the lines go to stderr behind
:data:`STATUS_MARK`, all before the code runs, and the outer stage ends stderr with a closing
line (exit status, usage, the files of scratch) behind a nonce announced in its first line: the
code never sees the nonce, so it cannot forge that line. A setup failure is reported as
``{"fatal": ...}`` and exits with :data:`SETUP_FAILED` before any user code runs.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

STATUS_FD = 3
SETUP_FAILED = 121

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
STATUS_MARK = b"\x1etether-status "
"""Prefix of the status lines when they travel on stderr (gVisor passes no other descriptor)."""

_child_pid = 0
_status_on_stderr = False


def _report(**fields: Any) -> None:
    line = (json.dumps(fields) + "\n").encode()
    with contextlib.suppress(OSError):
        if _status_on_stderr:
            os.write(2, STATUS_MARK + line)
        else:
            os.write(STATUS_FD, line)


def _fatal(message: str, **fields: Any) -> None:
    _report(fatal=message, **fields)
    os._exit(SETUP_FAILED)


def _sibling(name: str) -> Any:
    """A module copied next to this file (``mounts.py``, ``audithook.py``), loaded by path."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_tether_sandbox_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        config: dict[str, Any] = json.load(fh)
    return config


def _count_tasks(uid: int) -> int:
    """Tasks (threads included) whose real uid is ``uid``: what RLIMIT_NPROC counts."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count


def _set_rlimits(cfg: dict[str, Any], shared_uid: bool, pid_init: bool) -> None:
    import resource

    names = {
        "cpu": resource.RLIMIT_CPU,
        "as": resource.RLIMIT_AS,
        "nofile": resource.RLIMIT_NOFILE,
        "nproc": resource.RLIMIT_NPROC,
        "fsize": resource.RLIMIT_FSIZE,
        "core": resource.RLIMIT_CORE,
    }
    for name, (soft, hard) in cfg["rlimits"].items():
        soft, hard = int(soft), int(hard)
        if name == "cpu" and pid_init:
            # The code will be PID 1 of its namespace, which ignores SIGXCPU: SIGKILL right at
            # the limit instead of one second later.
            hard = soft
        if name == "nproc" and shared_uid:
            # Not root and no user namespace: the count includes the caller's own processes.
            extra = _count_tasks(os.getuid())
            soft, hard = soft + extra, hard + extra
        resource.setrlimit(names[name], (soft, hard))


def _drop_privileges(libc: Any, uid: int, gid: int) -> None:
    if os.geteuid() == 0 and uid != 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
            raise OSError(errno.EPERM, "could not drop to the sandbox uid/gid")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    # After the credential change: it clears the parent-death signal.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _filesystem(
    mounts: Any, libc: Any, cfg: dict[str, Any], ns: dict[str, bool]
) -> tuple[str, list[str]]:
    """Build the filesystem view; its label and the problems met on the way."""
    if not ns["mount"]:
        return "none", []
    try:
        if cfg.get("gvisor"):
            return "gvisor", mounts.build_gvisor_filesystem(libc, cfg, new_proc=ns["pid"])
        return "mount-namespace", mounts.build_filesystem(libc, cfg, new_proc=ns["pid"])
    except OSError as exc:
        return "none", [f"filesystem view: {exc}"]


def _inner(cfg: dict[str, Any], cfg_path: str, mounts: Any, libc: Any, ns: dict[str, bool]) -> None:
    """Privileged setup then execve of the user stage. Never returns."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        filesystem, errors = _filesystem(mounts, libc, cfg, ns)
        if cfg.get("require_isolation") and filesystem != "mount-namespace":
            _fatal(
                "the private read-only mount tree could not be built",
                weak_isolation=errors or ["no mount namespace"],
            )
        if cfg.get("gvisor") and filesystem == "none" and errors:
            # the hidden directories (/root, /home, /tmp...) may be half hidden: run nothing
            _fatal(f"sandbox setup failed: gVisor's filesystem view: {'; '.join(errors)}")
        _set_rlimits(cfg, shared_uid=os.geteuid() != 0 and not ns["user"], pid_init=ns["pid"])
        _drop_privileges(libc, int(cfg["uid"]), int(cfg["gid"]))
        os.chdir(cfg["scratch"])
        _report(stage="inner", filesystem=filesystem, uid=os.getuid(), errors=errors)
        python = cfg["python"]
        argv = [python, "-I", "-S", "-B", "-u", cfg["launcher"]]
        argv += ["--status-on-stderr"] if _status_on_stderr else []
        os.execve(python, [*argv, "--user", cfg_path], dict(cfg.get("env") or os.environ))
    except PermissionError as exc:
        if exc.filename == cfg.get("python"):
            _fatal(
                f"sandbox setup failed: the interpreter {exc.filename} cannot be executed by "
                f"the sandbox uid {cfg.get('uid')} ({exc.strerror}); without a mount namespace "
                "it must live in a directory every user can read (e.g. /usr), or run tether "
                "where namespaces are allowed"
            )
        _fatal(f"sandbox setup failed: PermissionError: {exc}")
    except BaseException as exc:
        _fatal(f"sandbox setup failed: {type(exc).__name__}: {exc}")


def _mirror(status: int) -> None:
    """End this process the way the inner stage ended."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _on_sigterm(signum: int, frame: object) -> None:
    if _child_pid:
        with contextlib.suppress(OSError):
            os.kill(_child_pid, signal.SIGKILL)
    else:
        os._exit(128 + signum)


def _closing_status(
    cfg: dict[str, Any], nonce: str, end: dict[str, Any], status: int, usage: Any
) -> None:
    """gVisor: how the code ended and the files it left (they live in gVisor's overlay, out of
    the parent's reach), as the last line of stderr, behind the nonce. Every process of the code
    is gone by now (the PID namespace died with its init), so nothing can write after it."""
    end["exit"] = os.waitstatus_to_exitcode(status)  # -N: killed by signal N
    end["cpu_s"] = float(usage.ru_utime + usage.ru_stime)
    _collect(cfg, end)
    with contextlib.suppress(OSError):
        data = b"\n" + STATUS_MARK + nonce.encode() + b" " + json.dumps(end).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(2, view) :]


def _collect(cfg: dict[str, Any], end: dict[str, Any]) -> None:
    """The files of scratch into ``end``, where the parent cannot reach them (gVisor's overlay,
    the tmpfs of this mount namespace)."""
    max_files, max_bytes = (int(n) for n in cfg["collect"])
    end.update(_sibling("collect").encoded(cfg["scratch"], max_files, max_bytes))


def _outer(cfg_path: str) -> None:
    global _child_pid
    os.closerange(STATUS_FD + 1, os.sysconf("SC_OPEN_MAX"))
    try:
        cfg = _load_config(cfg_path)
        signal.signal(signal.SIGTERM, _on_sigterm)
        mounts = _sibling("mounts")
        if cfg.get("gvisor"):
            outside = mounts.not_in_gvisor(str(cfg["host_release"]))
            if outside is not None:
                _fatal(
                    f"sandbox setup failed: the gVisor backend does not run in gVisor: {outside}"
                )
        libc = mounts.Libc()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if cfg["parent_pid"] and os.getppid() != int(cfg["parent_pid"]):
            os._exit(SETUP_FAILED)  # the parent is already gone
        ns, failures = mounts.unshare_namespaces(
            libc, bool(cfg["namespaces"]), bool(cfg.get("simulate_no_namespaces"))
        )
    except BaseException as exc:
        _fatal(f"sandbox setup failed: {type(exc).__name__}: {exc}")
        return
    if cfg.get("require_isolation") and not (ns["net"] and ns["mount"] and ns["pid"]):
        _fatal("namespaces are unavailable", weak_isolation=failures)
    scratchfs, capped = _sibling("scratchfs"), None
    if ns["mount"] and ns["pid"]:  # a scratch directory the limit cannot cover runs nothing
        try:
            capped = scratchfs.mount_scratch(libc, cfg)
        except OSError as exc:
            _fatal(f"sandbox setup failed: the size-capped scratch directory (tmpfs): {exc}")
    # On stderr, the status of the end travels after the code's own output: a per-execution
    # secret, never seen by the code (exec wipes it), tells our last line from a forged one.
    nonce = os.urandom(16).hex() if _status_on_stderr else ""
    _report(
        stage="outer",
        forked=ns["pid"],
        network_ns=ns["net"],
        mount_ns=ns["mount"],
        pid_ns=ns["pid"],
        user_ns=ns["user"],
        scratch_quota=capped is not None,
        nonce=nonce,
    )
    if not ns["pid"]:
        _inner(
            cfg, cfg_path, mounts, libc, ns
        )  # no PID namespace: this process becomes the sandbox
        return
    pid = os.fork()
    if pid == 0:
        _inner(cfg, cfg_path, mounts, libc, ns)
        return
    _child_pid = pid
    try:  # gVisor's tmpfs (capped False) does not count entries: the wait does
        status, usage, exceeded = scratchfs.wait(pid, cfg, watch=capped is False)
    except ChildProcessError:
        os._exit(SETUP_FAILED)
    # The parent's wait4 on this process cannot tell the sandbox's peak RSS: this process was
    # posix_spawn'ed (a vfork-style clone), and Linux carries the spawning process's high-water
    # RSS across exec. The forked child started from this small image, so its figure is true.
    end: dict[str, Any] = {"child_maxrss_kb": int(usage.ru_maxrss)}
    if capped is not None:
        end.update(scratchfs.ended(cfg, capped, exceeded))
        if not _status_on_stderr:  # the files live in this namespace's tmpfs
            _collect(cfg, end)
    if _status_on_stderr:
        _closing_status(cfg, nonce, end, status, usage)
    else:
        _report(**end)
        os.close(STATUS_FD)
    _mirror(status)


# --------------------------------------------------------------------------- user stage


def _print_exception(exc: BaseException, tb: TracebackType | None) -> None:
    import traceback

    if sys.excepthook is sys.__excepthook__:
        traceback.print_exception(type(exc), exc, tb)
    else:
        sys.excepthook(type(exc), exc, tb)


def _user(cfg_path: str) -> None:
    import linecache
    import traceback  # noqa: F401 - loaded now: printing a MemoryError must not need memory
    import types

    try:
        cfg = _load_config(cfg_path)
        with open(cfg["code"], "rb") as fh:
            source = fh.read()
        policy = _sibling("audithook")
        policy.neuter_posixsubprocess()
        hook = None
        if cfg["audit_hook"]:
            extensions = policy.allowed_extensions(p for p in sys.path if p)
            hook = policy.make_audit_hook(cfg["scratch"], extensions)
    except BaseException as exc:
        _fatal(f"sandbox setup failed: {type(exc).__name__}: {exc}")
        return
    _report(stage="user", audit_hook=hook is not None)
    if not _status_on_stderr:
        os.close(STATUS_FD)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    filename = "main.py"
    text = source.decode("utf-8", "replace")
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    main = types.ModuleType("__main__")
    main.__dict__["__file__"] = filename
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    sys.argv = [filename]
    if hook is not None:
        sys.addaudithook(hook)
    del cfg, hook, policy
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        _print_exception(exc, None)
        raise SystemExit(1) from None
    del source, text
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        if isinstance(exc, MemoryError):
            main.__dict__.clear()  # give the memory back so the traceback can be printed
        _print_exception(exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        raise SystemExit(1) from None


def main(argv: Sequence[str]) -> None:
    global _status_on_stderr
    args = list(argv[1:])
    if args[:1] == ["--status-on-stderr"]:
        _status_on_stderr = True
        del args[0]
    if len(args) == 2 and args[0] == "--user":
        _user(args[1])
    elif len(args) == 1:
        _outer(args[0])
    else:
        sys.stderr.write("usage: launcher.py [--status-on-stderr] [--user] CONFIG\n")
        os._exit(SETUP_FAILED)


if __name__ == "__main__":
    main(sys.argv)
