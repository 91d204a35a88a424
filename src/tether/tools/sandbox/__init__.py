"""A sandbox for agent-generated Python code.

``await run_python(code, limits=..., files=..., stdin=...)`` runs ``code`` as ``__main__`` in a
fresh, isolated process and returns a :class:`SandboxResult` (output, exit, resource usage, the
reason it was killed, the files it left, and which isolation was in force). ``Sandbox`` holds
defaults; ``run_python_sync`` / ``Sandbox.run_sync`` are the blocking twins.

Backends
========

* ``"process"``: Linux namespaces, an unprivileged uid, rlimits and the audit hook (below).
* ``"gvisor"``: the same launcher inside gVisor (``runsc --rootless --network=none do``), whose
  user-space kernel is the outer boundary (see "Under gVisor").
* ``"auto"`` (default): gVisor when ``runsc`` is on PATH **and passed a self-check on this
  machine** (a trivial program run under it must print the expected line and see gVisor's
  kernel, not the host's; run once per process, cached, a failure logged once), else
  ``"process"``. :func:`gvisor_available` tells which. An explicit ``backend="gvisor"`` raises
  ConfigurationError without ``runsc`` and SandboxError when it fails the check.

How one execution runs
======================

The parent writes a private work directory (``tempfile.mkdtemp``): ``launcher.py`` (the
standalone in-child bootstrap, :mod:`.launcher`) and the standalone modules it loads by path
(``mounts.py``: namespaces and the filesystem view; ``audithook.py``: the policy;
``collect.py``), the code, a JSON config, and ``scratch/`` (mode 0700, owned by the sandbox
uid). It ``posix_spawn``\\ s ``python -I -S -B -u launcher.py`` in a new session (its own process
group) with a fixed environment (``PATH``, ``HOME`` and ``TMPDIR`` = scratch, ``LANG``,
``PYTHONIOENCODING``, ``MALLOC_ARENA_MAX``): nothing of the host's environment. The code travels
in a file, never on a command line. The launcher:

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

Guarantees, by layer (process backend)
======================================

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
* **Disk** (``max_disk_bytes``, ``max_disk_files``): before forking the code, the launcher
  mounts a tmpfs of that size (``nr_inodes`` = ``max_disk_files`` + 1) over scratch in the
  sandbox's private mount namespace and copies the input files in; a write beyond it fails
  with ENOSPC in the kernel (a page of a mapped file: SIGBUS), whatever the process does.
  Everything else is read-only, links cannot leave the tmpfs (EXDEV) and hard links share
  their inode's pages, so nothing the code writes reaches the host's disk or inodes; the
  tmpfs is memory, besides ``memory_bytes``. The launcher, outside the code's reach, collects
  the files from it once the code is gone and says whether it was full. Without a mount
  namespace (weak isolation) the parent measures scratch every 50 ms instead (allocated
  blocks, each inode once, no link followed) and kills the code over either limit: a bound
  with an overshoot of what it writes between two looks, and world-writable places such as
  ``/tmp`` are kept out only by the audit hook.
* **Cleanup.** When the sandbox's PID 1 dies the kernel kills every process of the namespace;
  the parent also SIGKILLs the process group and, without a PID namespace, every process of the
  per-execution uid. No process outlives the call.
* **Wall clock and output**, enforced by the parent: on timeout (or output overflow) it asks
  the launcher to SIGKILL the namespace (so CPU usage is still accounted) and SIGKILLs the whole
  process group 0.5 s later regardless.

Audit hook (``sys.addaudithook``, installed in every mode; defence in depth, and the only
barrier for what the kernel layers could not provide; :mod:`.audithook`): blocks process
creation (``os.fork``, ``os.exec*``, ``os.posix_spawn``, ``os.system``, ``subprocess.Popen``,
and the event-less ``_posixsubprocess.fork_exec`` is replaced), signals (``os.kill``,
``os.killpg``, ``signal.pthread_kill``), the network (creating any non-AF_UNIX socket, any
``connect``, ``bind``, ``sendto``, name resolution, the stdlib's network clients), writes
outside scratch (``open`` in a write mode, ``mkdir``, ``rename``, ``remove``, ``chmod``,
``symlink``...), importing ``ctypes``, ``_testcapi`` and the like, loading **any** extension
module by file unless it is one of the interpreter's own allowed ones (exact path: so neither
``ExtensionFileLoader("x._ctypes", path)`` nor ``_imp.create_dynamic`` nor a copy in scratch
gets ``_ctypes`` in), ``gc.get_objects``/``get_referrers``/``get_referents`` and
``sys._current_frames``. Python code cannot remove an audit hook, and it cannot reach this one's
state either: the policy is frozensets, tuples and strings captured in a closure (a denial's
traceback leads into the hook's frame, but ``f_locals`` there holds nothing mutable that
outlives the call, and no Python function), the hook looks up no global or builtin name at call
time (patching ``builtins``, ``os.path`` or the launcher's globals changes nothing; it resolves
paths itself with ``lstat``/``readlink``), and it never calls code the program controls
(arguments are checked with ``type(x) is str``...). **It is still the weaker layer**: it lives
in the same interpreter as the untrusted code, so memory corruption (e.g. crafted bytecode
through ``marshal.loads`` or ``code.replace``, which must stay allowed because imports and
``asyncio`` use them) can switch it off; a path it checked can be swapped (symlink) by another
thread before the kernel opens it; ``os.open(..., dir_fd=fd)`` raises its event without the
descriptor (a relative path there is checked against the working directory); and it restricts
writes, not reads.

Weak isolation is refused unless asked for
------------------------------------------

Where the kernel refuses namespaces (no CAP_SYS_ADMIN, no unprivileged user namespaces), or the
private mount tree cannot be built, the process backend raises :class:`WeakIsolationError`
(which ``unshare`` failed and why, and how to opt in) before any code runs; the first execution
probes this and later ones are refused without starting a process. With
``allow_weak_isolation=True`` (``Sandbox(...)``, ``run_python(...)``) it runs anyway, reported
honestly in the result: ``network == "audit-hook"`` (sockets blocked only by the hook),
``filesystem == "permissions"`` (the unprivileged uid cannot write root-owned places, but
world-writable ones such as ``/tmp`` are protected only by the hook), and the process-group
kill plus, with a per-execution uid, a kill of every process of that uid replace the PID
namespace. In this mode the interpreter must be installed where the sandbox uid can read it.
Not root: no uid change is possible; the code runs as the caller's uid. An unprivileged user
namespace (where the kernel allows one) still provides the network, mount and PID namespaces,
and the PID namespace is then what keeps the code from signalling the caller's other
processes; without one (weak mode) only the rlimits, the process-group kill and the audit hook
apply, and ``RLIMIT_NPROC`` is raised by the number of tasks the user already runs.

Under gVisor
------------

``runsc --rootless --network=none do -quiet -cwd / -- python ... launcher.py``: gVisor's
user-space kernel (the Sentry) serves every system call; the host filesystem is seen
read-only under gVisor's writable in-memory overlay, so nothing the code does reaches host
files (``network == filesystem == "gvisor"``). Inside, the launcher applies the same layers as
far as gVisor allows: a new network namespace (no interface but gVisor's own loopback: a
connect to any outside address fails with EHOSTUNREACH), a PID namespace (the code is PID 1 and
sees only itself), the rlimits, the per-execution uid with no capabilities and
``no_new_privs``, the fixed environment, the audit hook, the output caps and wall clock. What
differs:

* gVisor has no bind mounts, so hidden paths are not masked-and-bound-back: those with
  nothing to keep inside get an empty read-only tmpfs; those on the way to the interpreter or
  the work directory (``/tmp``, ``/root`` when Python lives there) are *pruned in the overlay*:
  every other entry is removed or closed (0700, root-owned) and the directories on the way are
  crossable but not listable (0711). The rest of the tree is not remounted read-only; the
  unprivileged uid's permissions decide what it may write, and any write lands in memory
  (``RLIMIT_FSIZE`` caps each file). runsc runs with ``--overlay2=root:memory``: the overlay
  is memory, never a file on the host's disk (newer runsc versions default to one).
* Scratch is a tmpfs of ``max_disk_bytes`` in gVisor's kernel (ENOSPC beyond it, as above);
  gVisor's tmpfs refuses ``nr_inodes``, so the launcher counts scratch's entries every 50 ms
  while the code runs and SIGKILLs it past ``max_disk_files`` (``"disk"``; an overshoot of
  what it creates in that time, in gVisor's memory). Writes the uid's permissions allow
  elsewhere in the overlay are not counted: with tether as root the per-execution uid owns
  nothing there and the hidden world-writable directories are closed; run as another user,
  the code may write (into memory) where that user may.
* runsc passes no descriptor but 0-2: the launcher's status lines travel on stderr, before
  the code runs; its closing line (exit status, CPU time and peak RSS measured inside gVisor,
  the files of scratch collected inside gVisor with the same rules, base64) comes last,
  behind a per-execution nonce the code never sees, so a forged line is plain output.
  Files collected are bounded as usual; the closing line may take up to
  ``2 * max_collected_bytes`` more of the parent's memory.
* ``/dev/stdout`` and ``/dev/stderr`` cannot be reopened by path (write to ``sys.stdout``).
* Killing: the parent SIGTERMs runsc, which forwards it to the launcher (it SIGKILLs the code)
  and tears gVisor down; 3 s later it SIGKILLs runsc's process group and every descendant.
  Each execution starts a gVisor sandbox (about half a second more per call).
* The weak-isolation refusal does not apply (gVisor is the boundary).

Classification (``SandboxResult.killed_reason``): our wall-clock kill → ``"timeout"``; our
output kill → ``"output"``; SIGXCPU, or SIGKILL after the CPU limit → ``"cpu"``; a MemoryError
(or allocation failure) → ``"memory"``; SIGXFSZ or EFBIG → ``"file_size"``; ENOSPC, an error
exit or SIGBUS with scratch full, or a kill over the disk limit → ``"disk"``; EAGAIN from fork
or thread creation → ``"processes"``; any other signal → ``"killed"``. What the process printed
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
