"""A sandbox for agent-generated Python code.

``await run_python(code, limits=..., files=..., stdin=...)`` runs ``code`` as ``__main__`` in a
fresh, isolated process and returns a :class:`SandboxResult` (output, exit, resource usage, the
reason it was killed, the files it left, and which isolation was in force). ``Sandbox`` holds
defaults; ``run_python_sync`` / ``Sandbox.run_sync`` are the blocking twins.

How one execution runs
======================

The parent writes a private work directory (``tempfile.mkdtemp``): ``launcher.py`` (the
standalone in-child bootstrap, :mod:`.launcher`), the code, a JSON config, and ``scratch/``
(mode 0700, owned by the sandbox uid). It ``posix_spawn``\\ s ``python -I -S -B -u launcher.py``
in a new session (its own process group) with a fixed environment (``PATH``, ``HOME`` and
``TMPDIR`` = scratch, ``LANG``, ``PYTHONIOENCODING``, ``MALLOC_ARENA_MAX``): nothing of the
host's environment. The code travels in a file, never on a command line. The launcher:

1. closes every inherited descriptor above 3, arms ``PR_SET_PDEATHSIG`` (dies with the parent);
2. ``unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID)`` (through ctypes; plus
   ``CLONE_NEWUSER`` when not root), then forks: the child is PID 1 of a new PID namespace;
3. in the child, still privileged: builds a private mount tree (below), sets the rlimits, drops
   to the sandbox uid/gid with no supplementary groups, sets ``no_new_privs``, and
   ``execve``\\ s a fresh unprivileged interpreter (it never loaded ctypes, holds no capability);
4. that interpreter neuters ``_posixsubprocess.fork_exec``, installs the audit hook, closes the
   status pipe, and runs the code.

The parent reads stdout/stderr incrementally (each capped at ``max_output_bytes``), enforces
the wall clock, reaps the launcher with ``wait4`` (CPU time and peak RSS of the whole tree),
collects the regular files left in scratch (never following links), and deletes everything.

Guarantees, by layer
====================

Kernel-enforced (hold even if the code defeats the interpreter):

* **Separate process, separate identity.** As root, every execution runs under its own
  otherwise unused uid/gid (``0x60000000 + (pid << 7) + slot``; 65534 where that range is not
  mappable; configurable). It cannot read root-only files (``/etc/shadow``), signal or ptrace
  the parent (different uid, and the parent is outside its PID namespace), or read other
  processes' ``/proc/<pid>/environ``.
* **rlimits**, set before the exec and impossible to raise afterwards: ``RLIMIT_CPU``
  (SIGXCPU at the limit, SIGKILL one second later; the PID-namespace init ignores SIGXCPU, so
  there the SIGKILL applies), ``RLIMIT_AS``, ``RLIMIT_NOFILE``, ``RLIMIT_NPROC`` (counts tasks
  of the sandbox uid: with a per-execution uid exactly this execution's processes and threads),
  ``RLIMIT_FSIZE``, ``RLIMIT_CORE`` = 0.
* **No network** (``network == "namespace"``): a new, empty network namespace; not even
  loopback is up, so any connect fails (ENETUNREACH) without a packet leaving. Filesystem UNIX
  sockets are not covered by a network namespace: those under the hidden paths (``/run``,
  ``/tmp``...) are out of reach, others only behind file permissions.
* **Filesystem** (``filesystem == "mount-namespace"``): a private mount namespace where every
  mount is read-only and nosuid except scratch (read-write, nosuid, nodev, noexec); the hidden
  paths (``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run``, ``/root``, ``/home``...) and any
  directory the sandbox uid could not cross on the way to the interpreter are covered by empty
  tmpfs with only the interpreter's directories and the work directory bound back; a fresh
  read-only ``/proc`` shows only the sandbox's own processes. World-readable host files
  elsewhere (``/etc/passwd``, ``/usr``) stay readable, as for any unprivileged user.
* **Cleanup.** When the sandbox's PID 1 dies the kernel kills every process of the namespace;
  the parent also SIGKILLs the process group and, without a PID namespace, every process of the
  per-execution uid. No process outlives the call.
* **Wall clock and output**, enforced by the parent: on timeout (or output overflow) it asks
  the launcher to SIGKILL the namespace (so CPU usage is still accounted) and SIGKILLs the whole
  process group 0.5 s later regardless.

Audit hook (``sys.addaudithook``, installed in every mode; defence in depth, and the only
barrier for what the kernel layers could not provide): blocks process creation (``os.fork``,
``os.exec*``, ``os.posix_spawn``, ``os.system``, ``subprocess.Popen``, and the event-less
``_posixsubprocess.fork_exec`` is replaced), signals (``os.kill``, ``os.killpg``,
``signal.pthread_kill``), the network (creating any non-AF_UNIX socket, any ``connect``,
``bind``, ``sendto``, name resolution, the stdlib's network clients), writes outside scratch
(``open`` in a write mode, ``mkdir``, ``rename``, ``remove``, ``chmod``, ``symlink``...), and
the usual tools to forge memory or bytecode (importing ``ctypes``, ``_testcapi``...,
``code.__new__``, ``gc.get_referrers``...). Python code cannot remove an audit hook. **It is the
weaker layer**: it lives in the same interpreter as the untrusted code, so a bug that corrupts
interpreter memory (e.g. crafted ``marshal`` data, which must stay allowed because imports use
it) can switch it off; it does not see paths relative to a ``dir_fd`` in ``os.open``; and it
restricts writes, not reads.

Fallbacks, reported honestly in the result
------------------------------------------

* Namespaces not permitted (no CAP_SYS_ADMIN, no unprivileged user namespaces): ``network ==
  "audit-hook"`` (sockets blocked only by the hook), ``filesystem == "permissions"`` (the
  unprivileged uid cannot write root-owned places, but world-writable ones such as ``/tmp``
  are protected only by the hook), and the process group kill plus, with a per-execution uid,
  a kill of every process of that uid replace the PID namespace. The first execution probes
  this once; later ones stop asking. In this mode the interpreter must be installed where the
  sandbox uid can read it.
* Not root: no uid change is possible; the code runs as the caller's uid. An unprivileged
  user namespace (where the kernel allows one) still provides the network, mount and PID
  namespaces, and the PID namespace is then what keeps the code from signalling the caller's
  other processes. Without one, only the rlimits, the process-group kill and the audit hook
  apply, and ``RLIMIT_NPROC`` is raised by the number of tasks the user already runs.
* ``backend="gvisor"`` (or ``"auto"`` with ``runsc`` on PATH): the launcher runs under
  ``runsc --network=none [--rootless] do --``; every layer above also applies inside gVisor,
  whose user-space kernel is the outer boundary (``network == "gvisor"``). ``runsc do`` puts a
  writable in-memory overlay over the (read-only) host filesystem, so files the code writes
  stay inside gVisor and ``SandboxResult.files`` is empty. ``backend="gvisor"`` without
  ``runsc`` raises ConfigurationError. (Not exercised by the test suite: runsc is not
  installed where it runs.)

Classification (``SandboxResult.killed_reason``): our wall-clock kill → ``"timeout"``; our
output kill → ``"output"``; SIGXCPU, or SIGKILL after the CPU limit → ``"cpu"``; a MemoryError
(or allocation failure) → ``"memory"``; SIGXFSZ or EFBIG → ``"file_size"``; EAGAIN from fork or
thread creation → ``"processes"``; any other signal → ``"killed"``. What the process printed
can only change its own classification.
"""

from .limits import SandboxLimits
from .result import (
    FilesystemIsolation,
    KilledReason,
    NetworkIsolation,
    SandboxError,
    SandboxResult,
    WeakIsolationError,
)
from .sandbox import (
    DEFAULT_HIDDEN_PATHS,
    Backend,
    Sandbox,
    gvisor_available,
    run_python,
    run_python_sync,
)

__all__ = [
    "DEFAULT_HIDDEN_PATHS",
    "Backend",
    "FilesystemIsolation",
    "KilledReason",
    "NetworkIsolation",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "WeakIsolationError",
    "gvisor_available",
    "run_python",
    "run_python_sync",
]
