"""The sandbox's in-process policy: an audit hook whose state Python code cannot reach.

Standalone (standard library only): copied next to ``launcher.py`` into each execution's work
directory and loaded by the launcher's user stage before the untrusted code runs.

The hook runs inside the interpreter that runs the untrusted code, so it is written against an
attacker who holds every Python object that code can reach:

* **No mutable state.** The policy is frozensets, tuples, strings and ints captured in the
  closure. A denial's traceback does lead into the hook's frame, and ``frame.f_locals`` does show
  the closure's values, but there is nothing there to clear or rebind: no dict, no set, no
  Python function (a function's ``__closure__`` cells and ``__code__`` would be writable); the
  only mutable objects are the lists one call builds for itself, dead once it returns.
* **No lookups at call time.** The hook body uses no global or builtin name: ``type``, ``len``,
  the exception classes and the few C functions it calls (``posix.lstat``, ``posix.readlink``,
  ``posix.getcwd``) are bound when it is made. Patching ``builtins``, ``os.path.realpath``,
  ``posixpath`` or the launcher's globals changes nothing; paths are resolved by the hook's own
  loop over ``lstat``/``readlink``.
* **No code of the caller's runs inside it.** Arguments are inspected only after an exact
  ``type(x) is str`` (or ``bytes``/``int``) check, so no ``__eq__``, ``__hash__``,
  ``__fspath__`` or ``__class__`` of the caller's is ever invoked. (CPython converts path-like
  objects before it raises the event: the hook sees the very string the kernel will get; any
  other kind of path is refused.)
* **Extension modules by file.** An import that loads a shared object (the ``import`` event
  carries its path, whichever loader or name is used: ``ExtensionFileLoader("x._ctypes", ...)``,
  ``_imp.create_dynamic``) is allowed only for the files of the interpreter's own extension
  directories minus the forbidden ones (``_ctypes``, ``_testcapi``...), by exact path.
* ``sys._current_frames`` and ``gc`` object enumeration are refused. Tracing is not a way in:
  CPython runs audit hooks with tracing off (and the hook is unreachable, so nobody can set its
  ``__cantrace__``).

What it does not do: it cannot stop memory corruption, e.g. from crafted bytecode
(``marshal.loads`` must stay allowed because imports use it, and ``code.replace`` because
``asyncio`` uses it), a path checked here can be swapped (a symbolic link) by another
thread before the kernel opens it, and ``os.open(..., dir_fd=fd)`` raises its event without the
descriptor, so a relative path there is checked as if relative to the working directory.
The kernel layers are the barrier; this is defence in depth.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

BLOCKED_EVENTS = frozenset(
    {
        # new processes and programs
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "os.startfile",
        "subprocess.Popen",
        "pty.spawn",
        # signals to other processes
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        # network
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sendto",
        "socket.sendmsg",
        "socket.sethostname",
        "urllib.Request",
        "http.client.connect",
        "ftplib.connect",
        "smtplib.connect",
        "poplib.connect",
        "imaplib.open",
        "nntplib.connect",
        "telnetlib.Telnet.open",
        "webbrowser.open",
        # ways to reach raw memory, forge bytecode or enumerate live objects and frames
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "ctypes.addressof",
        "ctypes.get_errno",
        "ctypes.set_errno",
        "ctypes.seh_exception",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys._current_frames",
        "sys._current_exceptions",
        "resource.prlimit",
    }
)

BLOCKED_IMPORTS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_ctypes_test",
        "_posixsubprocess",  # pre-imported and neutered; a re-import would bring it back
        "_testcapi",
        "_testinternalcapi",
        "_testbuffer",
        "_testclinic",
        "_testmultiphase",
        "_testsinglephase",
        "_testimportmultiple",
        "_xxsubinterpreters",
        "_xxtestfuzz",
        "xxlimited",
        "xxlimited_35",
    }
)

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

# (event, index of the path argument, index of its dir_fd argument or -1)
PATH_EVENTS: tuple[tuple[str, int, int], ...] = (
    ("os.mkdir", 0, 2),
    ("os.rmdir", 0, 1),
    ("os.remove", 0, 1),
    ("os.symlink", 1, 2),
    ("os.chmod", 0, 2),
    ("os.chown", 0, 3),
    ("os.truncate", 0, -1),
    ("os.utime", 0, 3),
    ("os.chflags", 0, -1),
    ("os.lchflags", 0, -1),
    ("os.lchmod", 0, -1),
    ("os.setxattr", 0, -1),
    ("os.removexattr", 0, -1),
)
TWO_PATH_EVENTS = frozenset({"os.rename", "os.link"})  # (src, dst, src_dir_fd, dst_dir_fd)


def allowed_extensions(
    dirs: Iterable[str], blocked: frozenset[str] = BLOCKED_IMPORTS
) -> frozenset[str]:
    """Paths (as found and resolved) of the extension modules in ``dirs``, minus ``blocked``."""
    import importlib.machinery

    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found: set[str] = set()
    for d in dirs:
        try:
            names = os.listdir(d)
        except (OSError, TypeError):
            continue
        for name in names:
            if name.endswith(suffixes) and name.split(".", 1)[0] not in blocked:
                path = os.path.join(d, name)
                found.update((path, os.path.realpath(path)))
    return frozenset(found)


def make_audit_hook(
    scratch: str, extensions: frozenset[str] = frozenset()
) -> Callable[[str, tuple[Any, ...]], None]:
    """The policy: no processes, signals, network, raw memory; writes only in ``scratch``;
    extension modules only from ``extensions`` (exact paths)."""
    # Everything the hook touches is bound here, once: it looks up no global or builtin name.
    _type, _str, _bytes, _int, _tuple, _len = type, str, bytes, int, tuple, len
    _OSError = OSError
    _PermissionError, _ImportError = PermissionError, ImportError
    _lstat, _readlink, _getcwd = os.lstat, os.readlink, os.getcwd
    _decode = bytes.decode
    _fsencoding = sys.getfilesystemencoding()
    _EPERM = errno.EPERM
    root = os.path.realpath(scratch)
    prefix = root.rstrip("/") + "/"
    allowed_targets = (root, os.devnull)
    std_streams = frozenset(f"{d}/{n}" for d in ("/dev/fd", "/proc/self/fd") for n in (1, 2)) | {
        "/dev/stdout",
        "/dev/stderr",
    }
    blocked = BLOCKED_EVENTS
    blocked_imports = BLOCKED_IMPORTS
    write_flags = WRITE_FLAGS
    path_events = PATH_EVENTS
    path_event_names = frozenset(e for e, _, _ in PATH_EVENTS)
    two_path_events = TWO_PATH_EVENTS
    extension_paths = frozenset(extensions)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if _type(event) is not _str or _type(args) is not _tuple:
            return  # a spoofed sys.audit() call: not a real operation
        if event in blocked:
            raise _PermissionError(_EPERM, "sandbox: " + event + " is not allowed")
        n = _len(args)
        targets: tuple[Any, ...] = ()
        if event == "open":
            if n < 3:
                return
            mode, flags = args[1], args[2]
            writes = _type(flags) is _int and flags & write_flags != 0
            if _type(mode) is _str and ("w" in mode or "a" in mode or "x" in mode or "+" in mode):
                writes = True
            if not writes:
                return
            targets = ((args[0], None),)
        elif event in path_event_names:
            for known, path_index, fd_index in path_events:
                if known == event and path_index < n:
                    dir_fd = args[fd_index] if 0 <= fd_index < n else None
                    targets = ((args[path_index], dir_fd),)
        elif event in two_path_events:
            if n < 2:
                return
            targets = (
                (args[0], args[2] if n > 2 else None),
                (args[1], args[3] if n > 3 else None),
            )
        elif event == "socket.__new__":
            # (sock, family, type, proto): only AF_UNIX socketpairs (asyncio's self-pipe) may
            # exist; connect/bind/send of any socket are blocked outright.
            if n < 2 or _type(args[1]) is not _int or args[1] != 1:
                raise _PermissionError(_EPERM, "sandbox: opening a network socket is not allowed")
            return
        elif event == "import":
            name: Any = args[0] if n > 0 else None
            if _type(name) is _str and (
                name in blocked_imports or name.rpartition(".")[2] in blocked_imports
            ):
                raise _ImportError("sandbox: importing " + name + " is not allowed")
            origin = args[1] if n > 1 else None
            if origin is not None and (_type(origin) is not _str or origin not in extension_paths):
                # An extension module loaded from a file: whatever its name, only the
                # interpreter's own (allowed) extension modules.
                shown = origin if _type(origin) is _str else "a non-str path"
                raise _ImportError(
                    "sandbox: loading the extension module " + shown + " is not allowed"
                )
            return
        else:
            return

        for path, dir_fd in targets:
            kind = _type(path)
            if kind is _int:
                continue  # an already-open descriptor: its opening was checked
            text = None
            if kind is _str:
                text = path
            elif kind is _bytes:
                text = _decode(path, _fsencoding, "surrogateescape")
            if text is None:
                raise _PermissionError(
                    _EPERM, "sandbox: writing through this kind of path is not allowed"
                )
            if text in std_streams:
                continue  # the already-open stdout/stderr pipes
            if text[:1] != "/":
                base: Any = None
                if _type(dir_fd) is _int and dir_fd >= 0:
                    try:
                        base = _readlink("/proc/self/fd/" + _str(dir_fd))
                    except _OSError:
                        base = None
                elif dir_fd is None or _type(dir_fd) is _int:  # -1: no dir_fd given
                    base = _getcwd()
                if _type(base) is not _str:
                    raise _PermissionError(
                        _EPERM, "sandbox: writing relative to this descriptor is not allowed", text
                    )
                text = base + "/" + text
            # realpath, by hand: resolve symbolic links component by component.
            pending = text.split("/")
            pending.reverse()
            resolved = ""
            hops = 0
            while pending:
                part = pending.pop()
                if part == "" or part == ".":
                    continue
                if part == "..":
                    resolved = resolved[: resolved.rfind("/")] if resolved else ""
                    continue
                candidate = resolved + "/" + part
                try:
                    mode_bits = _lstat(candidate).st_mode
                except _OSError:
                    resolved = candidate  # does not exist (yet): taken literally
                    continue
                if mode_bits & 0o170000 != 0o120000:
                    resolved = candidate
                    continue
                hops += 1
                try:
                    link = _readlink(candidate)
                except _OSError:
                    link = None
                if hops > 40 or _type(link) is not _str:
                    raise _PermissionError(
                        _EPERM, "sandbox: writing through this link is not allowed", text
                    )
                if link[:1] == "/":
                    resolved = ""
                more = link.split("/")
                more.reverse()
                pending.extend(more)
            real = resolved or "/"
            if real in allowed_targets or real[: _len(prefix)] == prefix:
                continue
            raise _PermissionError(
                _EPERM, "sandbox: writing outside the scratch directory is not allowed", text
            )

    return hook


def neuter_posixsubprocess() -> None:
    """``_posixsubprocess.fork_exec`` raises no audit event; replace it before the hook is on."""
    import _posixsubprocess

    def fork_exec(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EPERM, "sandbox: starting a process is not allowed")

    _posixsubprocess.fork_exec = fork_exec
